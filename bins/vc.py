"""Voice conversion with HierSpeech++: source wavs + prompt wavs -> 16 kHz wavs.

Examples::

    # official release (config.json next to the .pth), MMS-300m from the local HF cache
    python -m bins.vc --ckpt logs/hierspeechpp_eng_kor/hierspeechpp_v1.1_ckpt.pth \\
        --source src.wav --prompt voice.wav --output_dir out
    # an Echelon training run
    python -m bins.vc --ckpt_dir exp/hsp --pairs pairs.tsv --output_dir out --noise_scale 0.667

The same as ``echelon-infer --pipeline CKPT --model_type hierspeechpp ...``: outputs ``<source>_to_<prompt>.wav``;
the run ends with ``N written, M failed[: see <bad-item list>]`` and exits 1 when a pair failed
(``--allow_failures``: 0), 2 when it could not start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from bins.common import run_cli
from models.base.inference import add_run_arguments
from models.base.pipeline import PipelineSpec, build_pipeline
from models.base.task_inference import VoiceConversionInference, add_settings_arguments, settings_overrides
from utils.cli import ArgumentParser
from utils.config import apply_overrides
from utils.devices import resolve_device
from utils.registry import get

PROG = "bins.vc"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ckpt", help="official synthesizer .pth (plain state dict or {'model': ...})")
    where.add_argument("--ckpt_dir", help="Echelon checkpoint or experiment directory")
    parser.add_argument("--config", help="official config.json (default: next to --ckpt)")
    parser.add_argument("--device", default="cpu")
    VoiceConversionInference.add_arguments(parser)
    add_settings_arguments(parser, get("pipeline", "hierspeechpp").settings_class)
    add_run_arguments(parser)
    return parser


def main_unchecked(argv: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.device = resolve_device(args.device)
    synthesizer = args.ckpt or args.ckpt_dir
    infer = apply_overrides({"infer": {}}, settings_overrides(args))["infer"]
    components = {"synthesizer": synthesizer, **({"config": args.config} if args.config else {})}
    spec = PipelineSpec("hierspeechpp", components, infer, synthesizer)
    runner = VoiceConversionInference(build_pipeline(spec, args.device), args.device)
    result = runner.run(args)
    print(result.summary())
    return result.exit_code(args.allow_failures)


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(PROG, main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
