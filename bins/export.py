"""Export a checkpoint to ONNX: ``echelon-export onnx --ckpt_dir DIR --out FILE.onnx``.

The checkpoint's ``model_type`` picks the registered exporter (``--model_type`` for official files or bundled
releases). What each writes::

    echelon-export onnx --ckpt_dir exp/piper_joe --out voices/joe.onnx    # VITS: Piper's graph + joe.onnx.json
                                                                          # + tokens.txt (Piper, sherpa-onnx)
    echelon-export onnx --model_type speechsr --out sr48.onnx             # SpeechSR: 16 kHz -> 48 kHz audio
    echelon-export onnx --ckpt_dir exp/vits --out v.onnx --quantize int8  # dynamic int8 weights (onnxruntime)

Logic: the ``exporter`` registry (``models/tts/vits/onnx_export.py``, ...). An existing ``--out`` is refused
unless ``--overwrite``. Exit status 2 with one line on stderr (checked before anything is loaded where it can
be) for a bad option, an existing or unwritable ``--out``, or a checkpoint that cannot be read or exported.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path
from typing import List, Optional

from bins.common import run_cli
from models.base import checkpoint as ckpt
from models.base.onnx_backend import quantize_int8
from utils.cli import ArgumentParser
from utils.config import ConfigError
from utils.io import check_writable_dir
from utils.registry import get, names

PROG = "echelon-export"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=["onnx"], help="export format")
    parser.add_argument("--ckpt_dir", help="Echelon checkpoint/experiment dir (or official file with --model_type)")
    parser.add_argument("--model_type", help=f"exporter to use (default: the checkpoint's); one of {names('exporter')}")
    parser.add_argument("--out", type=Path, required=True, help="output FILE.onnx")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out (and what is written "
                                                                  "beside it)")
    parser.add_argument("--quantize", choices=["int8"], help="also quantise the weights (dynamic int8, onnxruntime): "
                        "a smaller file, but slower on CPUs for every graph measured (benchmarks/README.md)")
    parser.add_argument("--target_rate", type=int, help="SpeechSR: 24000 or 48000 (bundled release; default 48000)")
    return parser


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before anything is loaded, an ``--out`` that exists (unless ``overwrite``), is a folder, or lies in
    a folder that cannot be created or written."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give the FILE.onnx to write")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} already exists; pass --overwrite to replace it")
    check_writable_dir(out.parent, "--out folder", create=False)


def main_unchecked(argv: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ckpt_dir is None and args.model_type is None:
        parser.error("give --ckpt_dir DIR (or --model_type NAME for a bundled release)")
    check_out(args.out, args.overwrite)
    model_type = args.model_type or ckpt.model_type_of(ckpt.resolve_checkpoint_dir(args.ckpt_dir))
    exporter = get("exporter", model_type)
    options = {} if args.target_rate is None else {"target_rate": args.target_rate}
    unknown = [k for k in options if k not in inspect.signature(exporter).parameters]
    if unknown:
        raise ConfigError(f"--{unknown[0]} does not apply to {model_type}")
    written = exporter(args.ckpt_dir, args.out, **options)
    if args.quantize == "int8":
        quantize_int8(args.out)
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(PROG, main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
