"""LibriSpeech test-clean, 4-10 s: the zero-shot TTS test set of VALL-E and its successors, written out exactly.

For users who have the corpus (``<root>/test-clean/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` and
``.flac`` files, as unpacked from openslr.org/12)::

    python -m evaluation.benchmark.librispeech --root /data/LibriSpeech --out_dir exp/librispeech_protocol

writes ``pool.jsonl`` (every test-clean utterance: the prompts are drawn from it, another utterance of the same
speaker for cross-sentence, the target's own first 3 s for continuation), ``test.jsonl`` (the utterances of 4 to
10 s, inclusive, by their decoded length) and ``test_ids.txt``. Point a benchmark file at them::

    protocol: {manifest: "exp/librispeech_protocol/test.jsonl", pool: ["exp/librispeech_protocol/pool.jsonl"],
               tasks: ["tts_cross_sentence", "tts_continuation"], seed: 1234}

(``egs/benchmark/conf/librispeech_test_clean.json5``). Transcripts are kept as LibriSpeech spells them (upper
case, no punctuation); WER normalises case.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import soundfile as sf

from utils.io import atomic_write_text

MIN_SECONDS, MAX_SECONDS = 4.0, 10.0


def read_transcripts(chapter_dir: Path) -> Dict[str, str]:
    """``{utterance id: text}`` of one chapter's ``*.trans.txt``; a malformed line names file and line."""
    texts: Dict[str, str] = {}
    for trans in sorted(chapter_dir.glob("*.trans.txt")):
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            if not text:
                raise ValueError(f"{trans}:{number}: expected '<utterance id> <TEXT>'")
            texts[utt_id] = text
    return texts


def scan(root: Path, subset: str = "test-clean") -> List[dict]:
    """Manifest rows of every utterance of ``root/subset`` (id-sorted), with the decoded duration."""
    base = root / subset if (root / subset).is_dir() else root
    if not base.is_dir():
        raise FileNotFoundError(f"LibriSpeech {subset} not found under {root}")
    rows = []
    for chapter in sorted(p for p in base.glob("*/*") if p.is_dir()):
        for utt_id, text in sorted(read_transcripts(chapter).items()):
            audio = chapter / f"{utt_id}.flac"
            if not audio.is_file():
                raise FileNotFoundError(f"{audio} is listed in {chapter}'s transcript but missing")
            info = sf.info(str(audio))
            rows.append({"id": utt_id, "path": str(audio.resolve()), "speaker": utt_id.split("-")[0], "text": text,
                         "duration": info.frames / info.samplerate, "sample_rate": info.samplerate})
    if not rows:
        raise ValueError(f"no transcribed utterance under {base}")
    return rows


def duration_subset(rows: Sequence[dict], low: float = MIN_SECONDS, high: float = MAX_SECONDS) -> List[dict]:
    return [r for r in rows if low <= r["duration"] <= high]


def write_protocol(root: Path, out_dir: Path, subset: str = "test-clean") -> Dict[str, Path]:
    pool = scan(root, subset)
    test = duration_subset(pool)
    out = {"pool": out_dir / "pool.jsonl", "test": out_dir / "test.jsonl", "ids": out_dir / "test_ids.txt"}
    atomic_write_text(out["pool"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool))
    atomic_write_text(out["test"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in test))
    atomic_write_text(out["ids"], "".join(r["id"] + "\n" for r in test))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="LibriSpeech folder holding test-clean/")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--subset", default="test-clean")
    args = parser.parse_args(argv)
    try:
        paths = write_protocol(args.root, args.out_dir, args.subset)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"librispeech protocol: {err}", file=sys.stderr)
        return 2
    count = len(paths["ids"].read_text().splitlines())
    print(f"{count} test utterances of {MIN_SECONDS:g}-{MAX_SECONDS:g} s -> {paths['test']}; prompt pool {paths['pool']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
