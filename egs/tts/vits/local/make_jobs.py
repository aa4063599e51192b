"""VITS job lists for stage 3 from the shared seeded evaluation lists (egs/tts/hierspeechpp/local/make_eval_lists.py).

Reads ``--lists/{tts,vc}.jsonl`` and the test manifest and writes ``--out_dir/{tts,vc}_jobs.jsonl`` for
``bins/infer.py --jobs``: TTS jobs keep ``id, text, speaker`` (speaker dropped for single-speaker models);
VC jobs add ``source_speaker``. Items whose speakers the model was not trained on are listed in
``skipped.tsv`` and removed from the evaluation manifests ``{tts,vc}.jsonl`` written next to the jobs, so
inference and evaluation pair id for id.
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
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: List[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lists", required=True, type=Path, help="folder with tts.jsonl / vc.jsonl")
    parser.add_argument("--test_manifest", required=True, type=Path)
    parser.add_argument("--speakers", required=True, help='JSON list of the model\'s speakers ("[]" = single speaker)')
    parser.add_argument("--out_dir", required=True, type=Path)
    args = parser.parse_args()
    speakers = json.loads(args.speakers)
    source_speaker = {str(r["id"]): str(r["speaker"]) for r in _read(args.test_manifest)}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    skipped, tts_jobs, tts_eval, vc_jobs, vc_eval = [], [], [], [], []
    for row in _read(args.lists / "tts.jsonl"):
        if speakers and row["speaker"] not in speakers:
            skipped.append((row["id"], f"speaker {row['speaker']} not in the model"))
            continue
        job = {"id": row["id"], "text": row["text"]}
        if speakers:
            job["speaker"] = row["speaker"]
        tts_jobs.append(job)
        tts_eval.append(row)
    for row in _read(args.lists / "vc.jsonl"):
        src = source_speaker.get(str(row.get("source_id")))
        if not speakers:
            skipped.append((row["id"], "single-speaker model: no voice conversion"))
            continue
        if src not in speakers or row["speaker"] not in speakers:
            skipped.append((row["id"], f"speaker {src} or {row['speaker']} not in the model"))
            continue
        vc_jobs.append({"id": row["id"], "path": row["path"], "source_speaker": src, "speaker": row["speaker"]})
        vc_eval.append(row)
    _write(args.out_dir / "tts_jobs.jsonl", tts_jobs)
    _write(args.out_dir / "vc_jobs.jsonl", vc_jobs)
    _write(args.out_dir / "tts.jsonl", tts_eval)
    _write(args.out_dir / "vc.jsonl", vc_eval)
    (args.out_dir / "skipped.tsv").write_text("".join(f"{i}\t{r}\n" for i, r in skipped), encoding="utf-8")
    print(f"{len(tts_jobs)} TTS jobs, {len(vc_jobs)} VC jobs, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
