"""List the pretrained weights Echelon can use: ``echelon-models [--installed] [--json]``.

Installed ones first (the Piper joe voice, Whisper base and tiny.en, PocketSphinx, resemblyzer, DNSMOS, the
bundled SpeechSR releases, ...) with where they are, then the others (the official HierSpeech++ checkpoints,
other Piper voices, hub models) with where to get them; each with the Echelon command that loads it. Nothing is
loaded or downloaded. Logic: ``models/base/pretrained.py`` and the ``pretrained`` registry.
"""

from __future__ import annotations

import json
import sys
from typing import List, Optional

from bins.common import run_cli
from models.base.pretrained import catalogue, format_catalogue
from utils.cli import ArgumentParser

PROG = "echelon-models"


def main_unchecked(argv: List[str]) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--installed", action="store_true", help="only what is installed here")
    parser.add_argument("--json", action="store_true", help="one JSON list (name, purpose, installed, location, "
                                                            "usage) instead of text")
    args = parser.parse_args(argv)
    entries = [e for e in catalogue() if e.installed or not args.installed]
    print(json.dumps([e.as_dict() for e in entries], indent=2) if args.json else format_catalogue(entries))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(PROG, main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
