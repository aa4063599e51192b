"""Job lists of the template's inference stage from the shared seeded evaluation lists (make_eval_lists.py).

Reads ``--lists/{tts,vc}.jsonl`` and the manifests of ``--manifest_dir`` and writes, under ``--out_dir``, one
``<kind>_jobs.jsonl`` for ``bins/infer.py --jobs`` and its evaluation manifest ``<kind>.jsonl`` (same ids, so
inference and evaluation pair id for id); items left out are listed with the reason in ``skipped.tsv``.

``--style speakers`` (models with a speaker table, the train manifest's, see speakers.py):

* ``tts``: ``{"id", "text", "speaker"?}`` (speaker dropped for a single-speaker model; items of speakers the
  model was not trained on are skipped);
* ``vc``: ``{"id", "path", "source_speaker", "speaker"}`` between trained speakers (multi-speaker models only).

``--single_voice``: the model was trained without a speaker table (the family declared ``speakers=none``): every
TTS item, no speaker, no VC.

``--style prompts`` (zero-shot models: a voice prompt sets the voice):

* ``tts``: cross-sentence ``{"id", "text", "prompt"}`` (the prompt is another clip of the same speaker);
* ``vc``: the shared VC items as they are (source + another speaker's clip as the prompt); their jobs are
  ``vc_pairs.tsv`` (``source<TAB>prompt``, for ``bins/infer.py --pairs``, which names outputs by the ids).

``--style prompts_text`` (codec language models that also take the prompt's transcript): ``tts`` jobs add
``prompt_text`` (items whose prompt has no transcript are skipped), and ``cont`` is the continuation protocol
``{"id", "text", "prompt", "continuation": true}``: the first ``--prompt_seconds`` of the test clip itself and its
whole transcript (clips not longer than the prompt are skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from processors.data.manifest import atomic_write_text, read_jsonl
from speakers import speaker_table

Skipped = List[Tuple[str, str]]


def read_rows(path: Path) -> List[dict]:
    """JSONL rows (the one reader: a relative ``path`` resolves against the file's folder), paths absolute."""
    return read_jsonl(path.resolve(), (), ("path",)) if path.is_file() else []


def write_rows(path: Path, rows: List[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def speaker_jobs(lists: Path, manifests: Path, skipped: Skipped,
                 single_voice: bool) -> Dict[str, Tuple[List[dict], List[dict]]]:
    speakers = [] if single_voice else speaker_table(manifests / "train.jsonl")
    source_speaker = {str(r["id"]): str(r["speaker"]) for r in read_rows(manifests / "test.jsonl")}
    tts, vc = ([], []), ([], [])
    for row in read_rows(lists / "tts.jsonl"):
        if speakers and row["speaker"] not in speakers:
            skipped.append((row["id"], f"speaker {row['speaker']} not in the model"))
            continue
        tts[0].append({"id": row["id"], "text": row["text"], **({"speaker": row["speaker"]} if speakers else {})})
        tts[1].append(row)
    for row in read_rows(lists / "vc.jsonl"):
        src = source_speaker.get(str(row.get("source_id")))
        if not speakers:
            skipped.append((row["id"], "single-speaker model: no voice conversion"))
        elif src not in speakers or row["speaker"] not in speakers:
            skipped.append((row["id"], f"speaker {src} or {row['speaker']} not in the model"))
        else:
            vc[0].append({"id": row["id"], "path": row["path"], "source_speaker": src, "speaker": row["speaker"]})
            vc[1].append(row)
    return {"tts": tts, "vc": vc}


def prompt_jobs(lists: Path, manifests: Path, skipped: Skipped, with_text: bool,
                prompt_seconds: float) -> Dict[str, Tuple[List[dict], List[dict]]]:
    texts = {str(r["id"]): r.get("text", "") for split in ("train", "valid", "test")
             for r in read_rows(manifests / f"{split}.jsonl")}  # fmt: skip
    tts: Tuple[List[dict], List[dict]] = ([], [])
    for row in read_rows(lists / "tts.jsonl"):
        job = {"id": row["id"], "text": row["text"], "prompt": row["prompt"]}
        if with_text:
            job["prompt_text"] = texts.get(str(row.get("prompt_id")), "")
            if not job["prompt_text"]:
                skipped.append((row["id"], f"prompt {row.get('prompt_id')} has no transcript"))
                continue
        tts[0].append(job)
        tts[1].append(row)
    if not with_text:
        vc = read_rows(lists / "vc.jsonl")
        return {"tts": tts, "vc": ([{"path": r["path"], "prompt": r["prompt"]} for r in vc], vc)}
    cont: Tuple[List[dict], List[dict]] = ([], [])
    for row in read_rows(manifests / "test.jsonl"):
        if not row.get("text") or float(row.get("duration", 0)) <= prompt_seconds + 0.5:
            skipped.append((row["id"], "no transcript or too short for a continuation"))
            continue
        job_id = f"{row['id']}_cont"
        cont[0].append({"id": job_id, "text": row["text"], "prompt": row["path"], "continuation": True})
        cont[1].append({**row, "id": job_id, "prompt": row["path"]})
    return {"tts": tts, "cont": cont}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lists", required=True, type=Path, help="folder with the shared tts.jsonl / vc.jsonl")
    parser.add_argument("--manifest_dir", required=True, type=Path, help="train/valid/test JSONL manifests")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--style", choices=("speakers", "prompts", "prompts_text"), default="speakers")
    parser.add_argument("--prompt_seconds", type=float, default=3.0)
    parser.add_argument("--single_voice", action="store_true",
                        help="speakers style: a model trained without a speaker table (every text, no speaker, no VC)")
    args = parser.parse_args()
    skipped: Skipped = []
    try:
        if args.style == "speakers":
            kinds = speaker_jobs(args.lists, args.manifest_dir, skipped, args.single_voice)
        else:
            kinds = prompt_jobs(args.lists, args.manifest_dir, skipped, args.style == "prompts_text",
                                args.prompt_seconds)
    except (OSError, ValueError) as err:
        print(f"make_jobs.py: {err}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for kind, (jobs, evaluation) in kinds.items():
        if args.style == "prompts" and kind == "vc":
            atomic_write_text(args.out_dir / "vc_pairs.tsv", "".join(f"{j['path']}\t{j['prompt']}\n" for j in jobs))
        else:
            write_rows(args.out_dir / f"{kind}_jobs.jsonl", jobs)
        write_rows(args.out_dir / f"{kind}.jsonl", evaluation)
    atomic_write_text(args.out_dir / "skipped.tsv", "".join(f"{i}\t{why}\n" for i, why in skipped))
    print(", ".join(f"{len(jobs)} {kind} jobs" for kind, (jobs, _) in kinds.items()) + f", {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
