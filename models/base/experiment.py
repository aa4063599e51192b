"""An experiment directory holds one training run; starting another one there must be asked for.

``echelon-train`` into a directory that already has checkpoints:

* without ``--resume``/``--overwrite`` it refuses before building anything (a second run would write
  ``step_00000010`` beside the first run's ``step_00000020``, and inference would load the old one);
* ``--resume`` continues the latest valid checkpoint (the log keeps only the steps up to it, so no step is
  logged twice: :func:`truncate_log`);
* ``--overwrite`` moves the old run (checkpoints, ``train_log.jsonl``, TensorBoard events) into
  ``<exp_dir>/previous_runs/<time>/``: nothing is deleted.

How a run starts and ends: :func:`make_accelerator` takes the mixed precision from ``train.mixed_precision``
when the config sets it, else from the launcher (``accelerate launch`` exports its ``--mixed_precision`` or
YAML ``mixed_precision`` as ``ACCELERATE_MIXED_PRECISION``), else "no", and logs which one won;
:func:`load_weights` starts a run from another run's weights (``--init_from`` / ``--finetune_from``);
:func:`last_logged_values` is what a resumed run that has nothing left to train reports.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from models.base import checkpoint as ckpt
from models.base.tracker import read_log
from utils.io import atomic_write_text, check_writable_dir

RUN_ENTRIES = ("checkpoints", "train_log.jsonl", "tensorboard")  # what one training run writes into exp_dir
PREVIOUS_RUNS = "previous_runs"
LOG_NAME = "train_log.jsonl"
LAUNCHER_PRECISION = "ACCELERATE_MIXED_PRECISION"  # set by accelerate launch from its flag or YAML

log = logging.getLogger("echelon.trainer")


class ExperimentExistsError(ckpt.CheckpointError):
    """The experiment directory already holds a run and neither --resume nor --overwrite was given."""


def last_step(exp_dir: str | os.PathLike) -> Optional[int]:
    """Step of the newest checkpoint in ``exp_dir/checkpoints`` (None when there is none)."""
    latest = ckpt.latest_checkpoint(Path(exp_dir) / "checkpoints")  # ordered by the step in meta.json
    return None if latest is None else int(json.loads((latest / ckpt.META).read_text())["step"])


def prepare_exp_dir(exp_dir: str | os.PathLike, resume: bool, overwrite: bool, main_process: bool = True) -> Optional[Path]:
    """Check ``exp_dir`` before training starts; with ``overwrite`` move an earlier run aside (returns where).

    Raises :class:`ExperimentExistsError` (one line) when it holds checkpoints and neither flag was given,
    ``utils.io.OutputPathError`` when it is a file or cannot be written.
    """
    exp_dir = check_writable_dir(exp_dir, "experiment directory")
    step = last_step(exp_dir)
    if step is None or resume:
        return None
    if not overwrite:
        raise ExperimentExistsError(f"{exp_dir} already holds a run at step {step}: --resume to continue, "
                                    "--overwrite to start again (the old run is moved to "
                                    f"{exp_dir / PREVIOUS_RUNS}/)")
    if not main_process:  # the main process moves it; the others must not race it
        return None
    target = exp_dir / PREVIOUS_RUNS / time.strftime("%Y%m%d-%H%M%S")
    while target.exists():
        target = target.with_name(target.name + "_1")
    target.mkdir(parents=True)
    for name in RUN_ENTRIES:
        if (exp_dir / name).exists():
            os.replace(exp_dir / name, target / name)
    return target


def truncate_log(exp_dir: str | os.PathLike, step: int) -> int:
    """Drop ``train_log.jsonl`` records after ``step`` (a resumed run logs them again); returns how many."""
    path = Path(exp_dir) / LOG_NAME
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            after = int(json.loads(line)["step"]) > step
        except (ValueError, KeyError, TypeError):  # a torn last line from a killed run
            after = True
        if after:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return dropped


def last_logged_values(exp_dir: str | os.PathLike, step: int) -> Dict[str, float]:
    """The values ``train_log.jsonl`` holds for the last logged training step up to ``step`` ({} when none)."""
    records = read_log(exp_dir)
    logged = [s for s in records if s <= step]
    if not logged:
        return {}
    record = records[max(logged)]
    return {k: float(v) for k, v in record.items() if k not in ("step", "split")}


def resolve_mixed_precision(configured: Optional[str]) -> Tuple[str, str]:
    """``(precision, the source that won, in words)``: the config's, else the launcher's, else "no"."""
    launcher = os.environ.get(LAUNCHER_PRECISION, "").strip().lower()
    if configured is not None:
        overridden = f"; the launcher's {launcher} is overridden" if launcher and launcher != configured else ""
        return configured, f"train.mixed_precision in the config{overridden}"
    if launcher:
        return launcher, f"the launcher ({LAUNCHER_PRECISION}; train.mixed_precision is not set)"
    return "no", "the default (neither train.mixed_precision nor a launcher sets it)"


def make_accelerator(train_cfg: Any, cpu: bool) -> Any:
    """The run's ``accelerate.Accelerator`` (mixed precision per :func:`resolve_mixed_precision`, logged)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    precision, source = resolve_mixed_precision(train_cfg.mixed_precision)
    on_cpu = cpu or not torch.cuda.is_available()
    if precision == "fp16" and on_cpu:
        raise ValueError(f"fp16 needs a GPU (mixed precision from {source}); use bf16 or no on CPU")
    # accelerate keeps process-wide singletons; a second trainer in one process (tests, notebooks) with
    # other precision/accumulation settings must start from fresh ones. The distributed state is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # Without cpu=True accelerate ignores torchrun's WORLD_SIZE on a machine with no GPU: every process
    # would then train alone and all of them would write the same checkpoints.
    accelerator = Accelerator(mixed_precision=precision, gradient_accumulation_steps=train_cfg.grad_accum_steps,
                              cpu=on_cpu)  # fmt: skip
    if accelerator.is_main_process:
        log.info("training on %s", accelerator.device)
        log.info("mixed precision %s, from %s", precision, source)
    return accelerator


def load_weights(
    models: Mapping[str, torch.nn.Module], path: str | os.PathLike, strict: bool
) -> Dict[str, Dict[str, List[str]]]:
    """Load ``models``' weights (by name) from the checkpoint at ``path``; returns each model's report.

    ``strict=True`` (finetune): every model parameter must be found with the same shape.
    ``strict=False`` (init-from): whatever matches is loaded. Missing, unexpected and shape-mismatched
    keys are reported either way.
    """
    src = ckpt.resolve_checkpoint_dir(path)
    reports = {}
    available = set(ckpt.read_meta(src)["models"])
    for name, model in models.items():
        if name not in available:
            if strict:
                raise ckpt.CheckpointError(f"{src} has no weights for model {name!r}")
            log.warning("init-from %s: no weights for %s, left as initialised", src, name)
            continue
        report = ckpt.load_partial(model, ckpt.load_model_weights(src, name))
        reports[name] = report
        for kind in ("missing", "unexpected", "mismatched"):
            if report[kind]:
                log.warning("%s %s keys in %s: %s", name, kind, src, ", ".join(report[kind][:20]))
        if strict and (report["missing"] or report["mismatched"]):
            raise ckpt.CheckpointError(
                f"finetune from {src}: model {name!r} has {len(report['missing'])} missing and "
                f"{len(report['mismatched'])} shape-mismatched keys (first: "
                f"{(report['missing'] + report['mismatched'])[0]}); use --init_from for a partial load"
            )
    if not any(len(models[n].state_dict()) > len(r["missing"]) + len(r["mismatched"]) for n, r in reports.items()):
        raise ckpt.CheckpointError(f"--init_from {src}: no weight matches this model (by name and shape); "
                                   f"it holds {ckpt.model_type_of(src)!r} models {sorted(available)}")
    return reports
