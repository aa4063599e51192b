"""The speaker table of a TTS training manifest, as config overrides (the template's train stage).

Speakers that have at least one transcribed utterance are sorted by name; their position is the speaker id.
One speaker -> a single-speaker model (``model.n_speakers=0``, ``data.speakers=[]``). Output: one override per
line. :func:`speaker_table` is also what ``make_jobs.py`` uses, so the job lists name the speakers the model
was trained with without reading anything the train stage wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

from processors.data.manifest import read_jsonl


def speaker_table(manifest: Path) -> List[str]:
    """Sorted speakers with a transcribed utterance in ``manifest``; [] for a single-speaker corpus."""
    speakers = set()
    for row in read_jsonl(manifest, (), ()):
        if (row.get("text") or "").strip():
            speakers.add(str(row.get("speaker", "")))
    if not speakers:
        raise ValueError(f"no transcribed utterances in {manifest}: a TTS model needs transcripts")
    return sorted(speakers) if len(speakers) > 1 else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, type=Path)
    args = parser.parse_args()
    if not args.manifest.is_file():
        print(f"speakers.py: manifest not found: {args.manifest}", file=sys.stderr)
        return 1
    try:
        table = speaker_table(args.manifest)
    except ValueError as err:
        print(f"speakers.py: {err}", file=sys.stderr)
        return 1
    print(f"model.n_speakers={len(table)}")
    print("data.speakers=" + json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
