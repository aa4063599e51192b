"""Prepare a corpus into JSONL manifests: ``echelon-preprocess --dataset NAME --data_dir DIR --out_dir DIR``.

``NAME`` is any registered preparer (ljspeech, vctk, libritts, folder, kaldi, mini, ...); it writes
``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` with seeded, deterministic splits, and lists unreadable
files in ``rejected.tsv``. Offline, ``--data_dir`` must hold the corpus; ``--download`` fetches the public
archive when a network is there. Feature extraction is the next step: ``python -m bins.extract_features`` (see its ``--help`` and ``--list``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

import json5

from utils.registry import RegistryError, get, names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="echelon-preprocess", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help=f"registered preparer: {', '.join(names('preparer'))}")
    p.add_argument("--data_dir", required=True, help="corpus root (or where to download it)")
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


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        prepare = get("preparer", args.dataset)
    except RegistryError as err:
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    try:
        options = {"seed": args.seed, "download": args.download}
        options.update({k: v for k, v in (("valid", args.valid), ("test", args.test)) if v is not None})
        options.update(parse_options(args.options))
        paths = prepare(args.data_dir, args.out_dir, **options)
    except (OSError, ValueError, TypeError) as err:  # TypeError: an option this preparer does not take  # PreparerError, ManifestError, DownloadError
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
