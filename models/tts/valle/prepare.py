"""VALL-E features for manifests: phoneme tokens (``phonemes.jsonl``), the symbol table (``symbols.json``, from
the training manifest, or the transcripts of ``--symbols_from``) and codec codes (``encodec_codes/<id>.pt``,
registered feature ``encodec_codes``, through the generic extraction of :mod:`processors.data.extract`).

Usage: ``python -m models.tts.valle.prepare --manifests train.jsonl valid.jsonl --out_dir feats
[--codec facebook/encodec_24khz|tiny-random] [--symbols_from train.jsonl]``. Resumable (existing phonemes and
codes are kept); items that fail are skipped and listed (phonemes: ``<out_dir>/phonemes_bad_items.tsv``;
audio: ``<out_dir>/bad_items.tsv``); exits non-zero only when nothing could be prepared.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional

from models.tts.valle.text import build_symbols, phoneme_tokens
from processors.data.extract import extract_features
from processors.features.base import build_extractor
from processors.data.manifest import read_jsonl, read_manifest
from utils.io import atomic_write_text

log = logging.getLogger("echelon.valle.prepare")
PHONEMES = "phonemes.jsonl"
SYMBOLS = "symbols.json"


def read_phonemes(path: Path) -> Dict[str, List[str]]:
    """``{id: tokens}`` of an earlier run's phoneme cache (none yet: empty)."""
    if not path.is_file():
        return {}
    return {row["id"]: row["tokens"] for row in read_jsonl(path, ("id", "tokens"), ())}


def prepare(manifests: List[str], out_dir: Path, codec_name: str, language: str = "en-us",
            symbols_from: Optional[List[str]] = None, bandwidth: float = 6.0) -> Dict[str, int]:  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [e for m in manifests for e in read_manifest(m)]
    phonemes = read_phonemes(out_dir / PHONEMES)
    bad: Dict[str, str] = {}
    for entry in entries:
        if entry.id in phonemes:
            continue
        try:
            phonemes[entry.id] = phoneme_tokens(entry.text, language)
        except ValueError as err:
            bad[entry.id] = str(err).replace("\t", " ").replace("\n", " ")
    lines = [json.dumps({"id": k, "tokens": v}, ensure_ascii=False) for k, v in phonemes.items()]
    atomic_write_text(out_dir / PHONEMES, "\n".join(lines) + "\n")
    train_ids = [e.id for m in (symbols_from or manifests[:1]) for e in read_manifest(m)]
    symbols = build_symbols(phonemes[i] for i in train_ids if i in phonemes)
    atomic_write_text(out_dir / SYMBOLS, json.dumps(symbols, ensure_ascii=False) + "\n")
    rows = "".join(f"{item}\t{reason}\n" for item, reason in sorted(bad.items()))
    atomic_write_text(out_dir / "phonemes_bad_items.tsv", rows)
    codec = build_extractor("encodec_codes", {"model": codec_name, "bandwidth": bandwidth})
    report = extract_features([e for e in entries if e.id not in bad], out_dir, [codec])
    counts = {"items": len(entries), "codes_written": len(report.done), "codes_kept": len(report.skipped),
              "bad": len(bad) + len(report.bad), "symbols": len(symbols)}  # fmt: skip
    log.info("prepared %s", counts)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", nargs="+", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--codec", default="facebook/encodec_24khz")
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--language", default="en-us")
    parser.add_argument("--symbols_from", nargs="+", default=None,
                        help="manifests whose transcripts' tokens form the symbol table [the first manifest]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        counts = prepare(args.manifests, Path(args.out_dir), args.codec, args.language, args.symbols_from, args.bandwidth)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0 if counts["bad"] < counts["items"] else 1


if __name__ == "__main__":
    sys.exit(main())
