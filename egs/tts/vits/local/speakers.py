"""Print the config overrides of the speaker table of a VITS training manifest (stage 2 of the recipe).

Speakers that have at least one transcribed utterance are sorted by name; their position is the speaker id.
One speaker -> a single-speaker model (``model.n_speakers=0``). Output: one override per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, type=Path)
    args = parser.parse_args()
    if not args.manifest.is_file():
        print(f"speakers.py: manifest not found: {args.manifest}", file=sys.stderr)
        return 1
    speakers = set()
    for line in args.manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if (row.get("text") or "").strip():
                speakers.add(str(row.get("speaker", "")))
    if not speakers:
        print(f"speakers.py: no transcribed utterances in {args.manifest}: VITS needs transcripts", file=sys.stderr)
        return 1
    ordered = sorted(speakers)
    if len(ordered) == 1:
        print("model.n_speakers=0")
        print("data.speakers=[]")
    else:
        print(f"model.n_speakers={len(ordered)}")
        print("data.speakers=" + json.dumps(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
