"""VALL-E job lists for stage 4 from the shared seeded evaluation lists (egs/tts/hierspeechpp/local/make_eval_lists.py).

Writes under ``--out_dir``:

* ``tts_jobs.jsonl`` — cross-sentence zero-shot TTS: ``{"id", "text", "prompt", "prompt_text"}`` (the prompt is
  another clip of the same speaker, its transcript from the manifests); ``tts.jsonl`` the matching evaluation
  manifest. Items whose prompt has no transcript are listed in ``skipped.tsv``.
* ``cont_jobs.jsonl`` — continuation (the paper's protocol): ``{"id", "text", "prompt", "continuation": true}``
  with the test utterance itself as prompt (its first ``--prompt_seconds``) and its whole transcript;
  ``cont.jsonl`` the evaluation manifest (reference = the real recording). Clips not longer than the prompt
  are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

from processors.data.manifest import atomic_write_text


def _read(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        audio = Path(row["path"])
        row["path"] = str(audio if audio.is_absolute() else (path.parent / audio).resolve())
    return rows


def _write(path: Path, rows: List[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lists", required=True, type=Path, help="folder with the shared tts.jsonl")
    parser.add_argument("--manifest_dir", required=True, type=Path, help="train/valid/test JSONL manifests")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--prompt_seconds", type=float, default=3.0)
    args = parser.parse_args()
    texts = {}
    for split in ("train", "valid", "test"):
        texts.update({str(r["id"]): r.get("text", "") for r in _read(args.manifest_dir / f"{split}.jsonl")})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    skipped, tts_jobs, tts_eval, cont_jobs, cont_eval = [], [], [], [], []
    for row in _read(args.lists / "tts.jsonl"):
        prompt_text = texts.get(str(row.get("prompt_id")), "")
        if not prompt_text:
            skipped.append((row["id"], f"prompt {row.get('prompt_id')} has no transcript"))
            continue
        tts_jobs.append({"id": row["id"], "text": row["text"], "prompt": row["prompt"], "prompt_text": prompt_text})
        tts_eval.append(row)
    for row in _read(args.manifest_dir / "test.jsonl"):
        if not row.get("text") or float(row.get("duration", 0)) <= args.prompt_seconds + 0.5:
            skipped.append((row["id"], "no transcript or too short for a continuation"))
            continue
        job_id = f"{row['id']}_cont"
        cont_jobs.append({"id": job_id, "text": row["text"], "prompt": row["path"], "continuation": True})
        cont_eval.append({**row, "id": job_id, "prompt": row["path"]})
    _write(args.out_dir / "tts_jobs.jsonl", tts_jobs)
    _write(args.out_dir / "tts.jsonl", tts_eval)
    _write(args.out_dir / "cont_jobs.jsonl", cont_jobs)
    _write(args.out_dir / "cont.jsonl", cont_eval)
    atomic_write_text(args.out_dir / "skipped.tsv", "".join(f"{i}\t{why}\n" for i, why in skipped))
    print(f"{len(tts_jobs)} TTS jobs, {len(cont_jobs)} continuation jobs, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
