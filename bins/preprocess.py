"""Prepare a corpus into JSONL manifests: ``echelon-preprocess --dataset NAME --data_dir DIR --out_dir DIR``.

``NAME`` is any registered preparer (ljspeech, vctk, libritts, folder, kaldi, mini, ...); it writes
``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` with seeded, deterministic splits, and lists unreadable
files in ``rejected.tsv``. Offline, ``--data_dir`` must hold the corpus; ``--download`` fetches the public
archive when a network is there.

Lhotse (processors/data/lhotse_io.py): ``--dataset lhotse:<recipe>`` runs ``lhotse.recipes.prepare_<recipe>`` on
the local corpus in ``--data_dir`` (LibriTTS-R, LibriSpeech, HiFi-TTS, ... ; recipe options as key=value);
``--from_lhotse cuts.jsonl.gz`` makes the manifests from a CutSet; ``--to_lhotse`` also writes each split as a
CutSet (``<split>_cuts.jsonl.gz``).  Feature extraction is the next step: ``python -m bins.extract_features`` (see its ``--help`` and ``--list``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import json5

from processors.data.lhotse_io import LhotseError, prepare_from_cuts, prepare_with_lhotse, write_cuts
from utils.cli import ArgumentParser
from utils.registry import RegistryError, get, names


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="echelon-preprocess", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", help=f"registered preparer ({', '.join(names('preparer'))}) or lhotse:<recipe>")
    p.add_argument("--data_dir", help="corpus root (or where to download it)")
    p.add_argument("--from_lhotse", metavar="CUTS", help="make the manifests from a Lhotse CutSet (cuts.jsonl.gz)")
    p.add_argument("--to_lhotse", action="store_true", help="also write each split as <split>_cuts.jsonl.gz")
    p.add_argument("--out_dir", required=True, help="where the manifests go")
    p.add_argument("--seed", type=int, default=1234, help="split seed")
    p.add_argument("--valid", type=float, help="validation fraction (or count if >= 1); preparer default if unset")
    p.add_argument("--test", type=float, help="test fraction (or count if >= 1); preparer default if unset")
    p.add_argument("--download", action="store_true", help="download the corpus when it is missing")
    p.add_argument("options", nargs="*", help="preparer-specific key=value options (json5 values), e.g. mic=mic2")
    return p


def parse_options(items: List[str]) -> dict:
    """``["valid=0", "mic=mic2"]`` -> ``{"valid": 0, "mic": "mic2"}`` (values parsed as json5 when they can be)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        try:
            options[key] = json5.loads(value)
        except ValueError:
            options[key] = value  # a plain word or a path
    return options


def _prepare(args: argparse.Namespace) -> dict:
    split_options = {k: v for k, v in (("valid", args.valid), ("test", args.test)) if v is not None}
    if args.from_lhotse:
        return prepare_from_cuts(args.from_lhotse, args.out_dir, seed=args.seed, **split_options)
    if args.dataset.startswith("lhotse:"):
        if args.download:
            raise LhotseError("lhotse recipes run offline here: put the corpus in --data_dir (no --download)")
        return prepare_with_lhotse(args.dataset.split(":", 1)[1], args.data_dir, args.out_dir, seed=args.seed,
                                   **split_options, **parse_options(args.options))
    prepare = get("preparer", args.dataset)
    options = {"seed": args.seed, "download": args.download, **split_options, **parse_options(args.options)}
    return prepare(args.data_dir, args.out_dir, **options)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.dataset) == bool(args.from_lhotse):
        parser.error("give one of --dataset NAME (with --data_dir) or --from_lhotse CUTS")
    if args.dataset and not args.data_dir:
        parser.error("--dataset needs --data_dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        paths = _prepare(args)
        if args.to_lhotse:
            paths.update({f"{split}_cuts": write_cuts(path, Path(args.out_dir) / f"{split}_cuts.jsonl.gz")
                          for split, path in list(paths.items())})
    except RegistryError as err:
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as err:  # TypeError: an option this preparer does not take  # PreparerError, ManifestError, DownloadError, LhotseError
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
