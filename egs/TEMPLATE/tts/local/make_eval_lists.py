"""Seeded TTS / VC / SR job lists over the test split (stage 6), so inference and evaluation pair by id.

Reads the JSONL manifests of stage 1 (one object per line: id, path, speaker, text, duration, sample_rate;
paths relative to the manifest) and writes, under ``--out_dir``:

* ``tts.jsonl``: one job per test utterance with a transcript: ``{"id", "text", "prompt", "prompt_id",
  "speaker", "path"}`` (``path`` = the real recording of that text, the reference for F0/MCD). The prompt is
  ANOTHER utterance of the same speaker (never the target itself, so the ground truth does not leak);
  utterances whose speaker has no other clip are listed in ``skipped.tsv``.
* ``vc.jsonl``: one job per test utterance: ``{"id", "path" (the source), "source_id", "text", "prompt",
  "prompt_id", "speaker" (the target speaker)}`` with a real target speaker other than the source's; the id is
  ``<source file stem>_to_<prompt file stem>``, the name the VC CLI gives its output; ``vc_pairs.tsv`` holds the
  same jobs as ``source<TAB>prompt`` lines for that CLI.
* ``sr_inputs.txt``: the shortest real (non-synthetic) test clip of 16 kHz or more, to upsample to 48 kHz.

The TTS and VC lists are also the reference manifests of ``bins/evaluate.py`` (ids, ``path``, ``text``,
``prompt``), so generated files, references and prompts pair strictly by id.

Every choice comes from ``random.Random(seed)`` over id-sorted lists: same manifests + seed = same lists
(:func:`evaluation.benchmark.protocol.build_lists`, which the benchmark uses for the same protocol).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

from evaluation.benchmark.protocol import build_lists, read_manifest
from processors.data.manifest import atomic_write_text


def write_jsonl(rows: List[dict], path: Path) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest_dir", required=True, type=Path, help="holds train/valid/test.jsonl")
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--max_items", type=int, default=None, help="first N test utterances (by id) only")
    args = parser.parse_args(argv)
    try:
        test = read_manifest(args.manifest_dir / "test.jsonl")
        pool = [r for split in ("train", "valid", "test") for r in read_manifest(args.manifest_dir / f"{split}.jsonl")]
    except (FileNotFoundError, ValueError) as err:
        print(f"make_eval_lists: {err}", file=sys.stderr)
        return 2
    if not test:
        print(f"make_eval_lists: {args.manifest_dir / 'test.jsonl'} is empty", file=sys.stderr)
        return 2
    try:
        lists = build_lists(test, pool, args.seed, args.max_items)
    except ValueError as err:
        print(f"make_eval_lists: {err}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tts", "vc"):
        write_jsonl(lists[name], args.out_dir / f"{name}.jsonl")
    pairs = "".join(f"{job['path']}\t{job['prompt']}\n" for job in lists["vc"])
    atomic_write_text(args.out_dir / "vc_pairs.tsv", pairs)
    atomic_write_text(args.out_dir / "sr_inputs.txt", "".join(f"{job['path']}\n" for job in lists["sr"]))
    skipped = "".join(f"{s['id']}\t{s['list']}\t{s['why']}\n" for s in lists["skipped"])
    atomic_write_text(args.out_dir / "skipped.tsv", "id\tlist\twhy\n" + skipped)
    print(f"{len(lists['tts'])} TTS, {len(lists['vc'])} VC, {len(lists['sr'])} SR jobs; "
          f"{len(lists['skipped'])} skipped (see {args.out_dir / 'skipped.tsv'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
