"""Run inference with any pipeline: ``echelon-infer --pipeline SPEC_OR_CHECKPOINT [inputs] --output_dir DIR``.

A pipeline is a json5 spec naming a registered pipeline, its checkpoints and its settings (see
``models/base/pipeline.py``), or a single Echelon checkpoint/experiment directory (``--ckpt_dir`` is the same
option). ``--model_type NAME`` picks a pipeline with no checkpoint of its own (``speechsr``: the bundled
release) or tells how to read an official ``.pth``. Examples::

    echelon-infer --pipeline hsp_tts.json5 --prompt voice.wav --text "Hello there." --output_dir out
    echelon-infer --ckpt_dir exp/hierspeechpp --source a.wav --prompt voice.wav --output_dir out --set infer.noise_scale=0.5
    echelon-infer --ckpt_dir exp/ttv --component synthesizer=exp/synth --prompt voice.wav --text_file t.txt --output_dir out
    echelon-infer --model_type speechsr --inputs a.wav --target_rate 48000 --output_dir out

Settings: ``--set infer.KEY=VALUE`` (repeatable) or ``--KEY VALUE``, validated against the pipeline's settings
(an unknown key fails naming the closest one). ``--pipeline X --help`` lists the options of that pipeline.

Every run ends with the first five failures (``id: reason``) and ``N written, M failed[: see <bad-item list>]``.
Outputs that exist stop the run unless ``--skip_existing`` (keep them, do the rest) or ``--overwrite``; Ctrl-C or
SIGTERM stop after the current item (``K not started: rerun with --skip_existing``). Progress: a bar on a
terminal, a line every 30 s otherwise (``--quiet``: none). Exit status: 0 when every item was written, 1 when
some failed (``--allow_failures``: 0), 2 when the run could not start (bad option, setting, device, checkpoint,
output folder; one line on stderr), 130/143 when stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import List, Optional, Tuple

from bins.common import run_cli
from models.base import pipeline as pl
from models.base.inference import add_run_arguments
from models.base.task_inference import TASK_RUNNERS, add_settings_arguments, runner_for, settings_overrides
from utils.cli import ArgumentParser
from utils.config import ConfigError
from utils.devices import resolve_device
from utils.registry import RegistryError, get, names

PROG = "echelon-infer"
LOAD_NOTICE_SECONDS = 3.0


def _base_parser(add_help: bool) -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], add_help=add_help,
                            epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_argument_group("pipeline")
    where.add_argument("--pipeline", "--ckpt_dir", dest="pipeline", metavar="SPEC_OR_DIR",
                       help="pipeline spec (.json5) or Echelon checkpoint/experiment dir (or an official .pth "
                            "with --model_type)")
    where.add_argument("--model_type", help="registered pipeline to use (default: from the spec / checkpoint)")
    where.add_argument("--component", action="append", default=[], metavar="NAME=PATH",
                       help="set one component of the pipeline (e.g. synthesizer=exp/synth); repeatable")
    where.add_argument("--synthesizer", help=argparse.SUPPRESS)  # older spelling of --component synthesizer=PATH
    where.add_argument("--set", dest="overrides", action="append", default=[], metavar="infer.KEY=VALUE",
                       help="inference setting override (repeatable)")
    where.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N (or gpu), mps")
    where.add_argument("--backend", choices=("torch", "onnxruntime"),
                       help="what runs the model: torch, or its exported ONNX graphs on onnxruntime (CPU; VITS, "
                            "SpeechSR, HierSpeech++ VC and TTS); default: the pipeline's own choice")
    return parser


def _components(args: argparse.Namespace) -> List[Tuple[str, str]]:
    pairs = [("synthesizer", args.synthesizer)] if args.synthesizer else []
    return pairs + pl.component_pairs(args.component)


TASK_TITLES = {"tts": "text-to-speech", "vc": "voice conversion", "sr": "speech super-resolution"}


def _general_help() -> int:
    """Every option: the run's, then each task's inputs with the pipelines that take them."""
    parser = _base_parser(add_help=True)
    add_run_arguments(parser)
    parser.print_help()
    by_task: dict = {}
    for name in names("pipeline"):
        try:
            by_task.setdefault(get("pipeline", name).task, []).append(name)
        except Exception:  # noqa: BLE001 - listed below: an optional dependency missing, or no task of its own
            by_task.setdefault("?", []).append(name)
    for task, runner in TASK_RUNNERS.items():
        inputs = argparse.ArgumentParser(prog=PROG, add_help=False, usage=argparse.SUPPRESS)
        runner.add_arguments(inputs)
        print(f"\n{TASK_TITLES[task]} pipelines ({', '.join(by_task.get(task, [])) or 'none'}) take:")
        print(inputs.format_help().split("\n", 1)[-1].rstrip())
    others = [n for n in names("inference") if n not in names("pipeline")]
    print(f"\nother checkpoint types (their own inputs): {', '.join(others) or 'none'}"
          + (f"\nother pipelines: {', '.join(by_task['?'])}" if "?" in by_task else "")
          + "\n\n--pipeline X --help adds X's inference settings (e.g. --length_scale, --noise_scale, "
            "--drop_unspeakable) and any inputs of its own.")
    return 0


def main_unchecked(argv: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    known, _ = _base_parser(add_help=False).parse_known_args(argv)
    asked_help = any(a in ("-h", "--help") for a in argv)
    if not asked_help:
        known.device = resolve_device(known.device)  # before any model is loaded
    if known.pipeline is None and known.model_type is None:
        if asked_help:
            return _general_help()
        raise ConfigError("give --pipeline SPEC_OR_DIR (or --ckpt_dir DIR, or --model_type NAME); see --help")
    resolved = pl.resolve(known.pipeline, known.model_type, _components(known), infer_settings(known.overrides))
    spec, runner_cls = resolved.spec, resolved.runner
    parser = _base_parser(add_help=True)
    if spec is not None:
        pipeline_cls = pl.pipeline_class(spec)
        runner_cls = runner_for(pipeline_cls, _registered_runner(spec.pipeline))
        runner_cls.add_arguments(parser)
        add_settings_arguments(parser, pipeline_cls.settings_class)
    else:
        runner_cls.add_arguments(parser)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    args.device = known.device
    runner_cls.check_args(args)  # inputs and output folder, before the model is loaded
    # Loading can take a while (big checkpoints, a loaded machine): a load still running after a few seconds
    # says so (settings errors, found first, stay one line); the batch then reports its own progress.
    what = spec.pipeline if spec is not None else args.model_type or args.pipeline
    notice = threading.Timer(LOAD_NOTICE_SECONDS, logging.getLogger("echelon.infer").info,
                             ("loading %s on %s ...", what, args.device))
    notice.daemon = True
    if not args.quiet:
        notice.start()
    try:
        if spec is not None:
            pl.with_overrides(spec, infer_settings(settings_overrides(args)))
            runner = runner_cls(pl.build_pipeline(spec, args.device, args.backend), args.device)
        else:
            if args.backend not in (None, "torch"):
                raise ConfigError(f"--backend {args.backend}: {args.model_type or args.pipeline} runs on torch only")
            runner = runner_cls.from_checkpoint(resolved.checkpoint, device=args.device)
    finally:
        notice.cancel()
    result = runner.run(args)
    print(result.summary())
    return result.exit_code(args.allow_failures)


def infer_settings(overrides: List[str]) -> List[str]:
    """``--set`` overrides and ``--KEY VALUE`` options: inference settings only (``infer.KEY=VALUE``)."""
    bad = [o for o in overrides if not o.startswith("infer.")]
    if bad:
        raise ConfigError(f"--set {bad[0]!r}: inference settings are set as infer.KEY=VALUE")
    return overrides


def _registered_runner(name: str) -> Optional[type]:
    try:
        return get("inference", name)
    except RegistryError:
        return None


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(PROG, main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
