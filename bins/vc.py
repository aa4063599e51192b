"""Voice conversion with HierSpeech++: source wav(s) + prompt wav(s) -> 16 kHz wav(s).

Examples::

    # official release (config.json next to the .pth), MMS-300m from the local HF cache
    python -m bins.vc --ckpt logs/hierspeechpp_eng_kor/hierspeechpp_v1.1_ckpt.pth \\
        --source src.wav --prompt voice.wav --output_dir out
    # an Echelon training run
    python -m bins.vc --ckpt_dir exp/hsp --pairs pairs.tsv --output_dir out --noise_scale 0.667
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from models.tts.hierspeechpp.inference import (
    VoiceConverter,
    add_vc_arguments,
    options_from_args,
    pairs_from_args,
)
from processors.ssl import DEFAULT_SSL_LAYER, DEFAULT_SSL_MODEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ckpt", help="official synthesizer .pth (plain state dict or {'model': ...})")
    where.add_argument("--ckpt_dir", help="Echelon checkpoint or experiment directory")
    parser.add_argument("--config", help="official config.json (default: next to --ckpt)")
    parser.add_argument("--ssl_model", default=None, help=f"SSL hub id or local dir (default {DEFAULT_SSL_MODEL})")
    parser.add_argument("--ssl_layer", type=int, default=DEFAULT_SSL_LAYER)
    parser.add_argument("--random_ssl_dim", type=int, default=0,
                        help="TESTS ONLY: a randomly initialised tiny wav2vec2 of this width (meaningless features)")
    parser.add_argument("--device", default="cpu")
    add_vc_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    pairs = pairs_from_args(args)
    ssl = None
    if args.ssl_model or args.random_ssl_dim or args.ckpt:
        ssl = VoiceConverter.build_ssl(args.ssl_model or DEFAULT_SSL_MODEL, args.ssl_layer, args.random_ssl_dim)
    if args.ckpt:
        converter = VoiceConverter.from_official(args.ckpt, args.config, ssl=ssl, device=args.device)
    else:
        converter = VoiceConverter.from_echelon(args.ckpt_dir, ssl=ssl, device=args.device)
    written = converter.convert_files(pairs, args.output_dir, options_from_args(args))
    for path in written:
        print(path)
    if len(written) < len(pairs):
        print(f"{len(pairs) - len(written)} pair(s) failed; see {args.output_dir}/bad_items.tsv", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
