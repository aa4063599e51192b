"""Extract training features (log-mel, linear spectrogram, log-F0, SSL) for a manifest or a folder of audio.

    python -m bins.extract_features --manifest data/train.jsonl --out_dir exp/features --nj 4 \\
        --ssl_model facebook/mms-300m --ssl_layer 7

Resumable (finished items are skipped), every file is written atomically, and bad items are listed with their
reason in ``<out_dir>/bad_items.tsv`` while all other items are processed.  See processors/data/extract.py.
Exit status: 0 when the run finished (bad items included; with ``--strict`` 3 if any item was bad), 2 on usage
errors (unreadable manifest, unknown feature, SSL model not loadable).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from processors.data.extract import ALL_KINDS, AudioFeatureSettings, extract_features
from processors.data.manifest import ManifestEntry, ManifestError, read_manifest
from processors.data.preparers import PreparerError, scan_folder
from processors.f0 import F0_MAX_VC
from processors.ssl import SSLModelError

EXIT_BAD_ITEMS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, action="append", help="JSONL manifest (repeatable)")
    source.add_argument("--input_dir", type=Path, help="a folder of audio files instead of a manifest")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--features", default=",".join(ALL_KINDS), help=f"comma list of {','.join(ALL_KINDS)}")
    parser.add_argument("--nj", type=int, default=1, help="worker processes for the audio features")
    parser.add_argument("--f0_method", default="yaapt", choices=["yaapt", "dio", "harvest"])
    parser.add_argument("--f0_max", type=float, default=F0_MAX_VC, help="1100 as the VC script, 400 as TTV prep")
    parser.add_argument("--ssl_model", default=None, help="hub id or local directory (needed for 'ssl')")
    parser.add_argument("--ssl_layer", type=int, default=7)
    parser.add_argument("--ssl_batch_size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--overwrite", action="store_true", help="recompute existing features")
    parser.add_argument("--strict", action="store_true", help=f"exit {EXIT_BAD_ITEMS} when any item was bad")
    return parser


def _entries(args: argparse.Namespace) -> List[ManifestEntry]:
    if args.input_dir is not None:
        return [ManifestEntry(i, p, spk, text, 0.0, 0) for i, p, spk, text, _ in scan_folder(args.input_dir)]
    entries: List[ManifestEntry] = []
    for manifest in args.manifest:
        entries.extend(read_manifest(manifest))
    return entries


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kinds = [k.strip() for k in args.features.split(",") if k.strip()]
    try:
        entries = _entries(args)
        report = extract_features(
            entries,
            args.out_dir,
            kinds=kinds,
            settings=AudioFeatureSettings(sample_rate=args.sample_rate, f0_method=args.f0_method, f0_max=args.f0_max),
            ssl_model=args.ssl_model,
            ssl_layer=args.ssl_layer,
            num_workers=args.nj,
            device=args.device,
            ssl_batch_size=args.ssl_batch_size,
            overwrite=args.overwrite,
        )
    except (ManifestError, PreparerError, SSLModelError, ValueError) as err:
        print(f"extract_features: {err}", file=sys.stderr)
        return 2
    print(
        f"extract_features: {len(report.done)} computed, {len(report.skipped)} already done, "
        f"{len(report.bad)} bad (listed in {report.bad_items_path})"
    )
    return EXIT_BAD_ITEMS if report.bad and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
