"""Train any registered model: ``echelon-train --config CONFIG --exp_dir DIR [key.path=value ...]``.

The config's ``model_type`` picks the trainer from the registry; the trainer's schema validates the whole
config (unknown keys fail with their path and the closest valid key). ``--resume`` continues the latest
checkpoint in ``DIR/checkpoints`` exactly; ``--init_from`` / ``--finetune_from`` load weights only. A DIR that
already holds checkpoints needs ``--resume`` or ``--overwrite`` (which moves the old run to
``DIR/previous_runs/<time>/``; see ``models/base/experiment.py``). Ctrl-C (SIGINT) or SIGTERM stop after the
current step, save it (atomically) and exit 130/143: ``--resume`` continues from that step. ``train.cpu_minutes``
stops (saved, exit 0) once the run and the runs it resumed used that much CPU time. ``--resume`` of a finished
run trains nothing and prints its last logged values.
Several processes (GPUs, or CPU through gloo): ``torchrun --nproc_per_node N -m bins.train ...`` or
``accelerate launch --multi_gpu --num_processes N -m bins.train ...`` (see ``models/base/distributed.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from bins.common import run_cli
from models.base import checkpoint as ckpt
from models.base.experiment import last_step, prepare_exp_dir
from utils.config import ConfigError, load_config, validate
from utils.registry import get


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="echelon-train", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="json5 experiment config")
    p.add_argument("--exp_dir", required=True, help="experiment directory (checkpoints, logs)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in exp_dir")
    mode.add_argument("--init_from", help="load matching weights from a checkpoint (partial allowed)")
    mode.add_argument("--finetune_from", help="load all weights from a checkpoint (must match)")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an exp_dir that holds a run (the old run is moved to exp_dir/previous_runs/)")
    p.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is visible")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.batch_size=8")
    return p


def main_unchecked(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raw = load_config(args.config, args.overrides)
    model_type = raw.get("model_type")
    if not model_type:
        raise ConfigError(f"{args.config}: missing 'model_type' (which registered model to train)")
    trainer_cls = get("trainer", model_type)
    cfg = validate(raw, trainer_cls.config_class)
    data = getattr(cfg, "data", None)
    if getattr(data, "format", "files") == "files" and not getattr(data, "train_manifest", "set"):
        raise ConfigError(f"data.train_manifest is not set: give it in {args.config} or as data.train_manifest=PATH")
    if args.overwrite and args.resume:
        raise ConfigError("--resume continues the run in exp_dir and --overwrite moves it aside: give one")
    moved = prepare_exp_dir(args.exp_dir, args.resume, args.overwrite, main_process=_is_main_process())
    if moved is not None:
        print(f"echelon-train: moved the previous run of {args.exp_dir} to {moved}", file=sys.stderr)
    trainer = trainer_cls(
        cfg, args.exp_dir, resume=args.resume, init_from=args.init_from,
        finetune_from=args.finetune_from, cpu=args.cpu,
    )  # fmt: skip
    last = trainer.train(quiet=args.quiet)
    if trainer.interrupted is not None:
        saved = last_step(args.exp_dir)
        where = (f"last checkpoint: step {saved}; --resume continues from it" if saved is not None
                 else "no checkpoint was saved yet")
        print(f"echelon-train: interrupted at step {trainer.step}: {where}", file=sys.stderr)
        return trainer.interrupted
    values = ", ".join(f"{k}={v:.4g}" for k, v in last.items()) or "no values in the log"
    if trainer.stop_reason is not None:
        print(f"stopped at step {trainer.step} ({trainer.stop_reason}): {values}")
    elif trainer.steps_trained == 0:
        latest = ckpt.latest_checkpoint(trainer.ckpt_root)
        print(f"finished at step {trainer.step}: {values} (the run was already complete: nothing trained; "
              f"its checkpoint is {latest})")
    else:
        print(f"finished at step {trainer.step}: {values}")
    return 0


def _is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch (or a lone process): the one that may move an old run aside."""
    return os.environ.get("RANK", "0") == "0"


def main(argv: Optional[List[str]] = None) -> int:
    """Known errors (config, manifest, checkpoint, audio) end in one line and exit 2 (bins/common.py)."""
    return run_cli("echelon-train", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
