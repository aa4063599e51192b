"""Prepare a corpus into JSONL manifests: ``echelon-preprocess --dataset NAME --data_dir DIR --out_dir DIR``.

``NAME`` is any registered preparer (ljspeech, vctk, libritts, folder, kaldi, mini, ...); it writes
``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` with seeded, deterministic splits, and lists unreadable
files in ``rejected.tsv``. Offline, ``--data_dir`` must hold the corpus; ``--download`` fetches the public
archive when a network is there. Feature extraction is the next step: ``python -m bins.extract_features``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from utils.registry import RegistryError, get, names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="echelon-preprocess", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help=f"registered preparer: {', '.join(names('preparer'))}")
    p.add_argument("--data_dir", required=True, help="corpus root (or where to download it)")
    p.add_argument("--out_dir", required=True, help="where the manifests go")
    p.add_argument("--seed", type=int, default=1234, help="split seed")
    p.add_argument("--valid", type=float, default=0.05, help="validation fraction (or count if >= 1)")
    p.add_argument("--test", type=float, default=0.05, help="test fraction (or count if >= 1)")
    p.add_argument("--download", action="store_true", help="download the corpus when it is missing")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        prepare = get("preparer", args.dataset)
    except RegistryError as err:
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    try:
        paths = prepare(args.data_dir, args.out_dir, seed=args.seed, valid=args.valid, test=args.test,
                        download=args.download)  # fmt: skip
    except (OSError, ValueError) as err:  # PreparerError, ManifestError, DownloadError
        print(f"echelon-preprocess: {err}", file=sys.stderr)
        return 2
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
