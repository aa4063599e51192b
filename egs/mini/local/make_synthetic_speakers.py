"""Top the mini corpus up with SYNTHETIC speakers from espeak-ng (or flite), clearly labelled as such.

The bundled corpus has only a handful of real speakers; a few formant-synthesised voices (different voice
variants, pitches and rates) give voice conversion more identities to move between. Every row this writes says
``synthetic`` in its source, speaker, licence and notes columns, so nobody mistakes it for a recording.

Writes ``<out_dir>/<speaker>/<speaker>_<n>.wav`` and ``<out_dir>/manifest.csv`` with the same columns as
``egs/mini/corpus/manifest.csv``. Deterministic: the same arguments give the same files.

    PYTHONPATH=. python egs/mini/local/make_synthetic_speakers.py --out_dir exp/demo/data/synthetic --num_speakers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple

import soundfile as sf

from utils.io import atomic_path

# Harvard sentences (IEEE 1969, public domain): phonetically balanced and unlike the real clips' texts.
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
)

MANIFEST_COLUMNS = ("path", "source", "speaker", "transcript", "duration", "sr", "channels", "subtype", "license",
                    "notes", "source_repo", "source_commit", "source_path")  # fmt: skip


class Voice(NamedTuple):
    """One synthetic identity: engine voice name plus pitch (0-99) and rate (words per minute) for espeak-ng."""

    name: str
    voice: str
    pitch: int
    rate: int


ESPEAK_VOICES = (
    Voice("synth_espeak_us_m", "en-us+m3", 35, 160),
    Voice("synth_espeak_gb_f", "en-gb+f3", 70, 150),
    Voice("synth_espeak_sc_m", "en-gb-scotland+m1", 50, 145),
    Voice("synth_espeak_us_f", "en-us+f2", 80, 170),
)
FLITE_VOICES = (Voice("synth_flite_slt", "slt", 0, 0), Voice("synth_flite_rms", "rms", 0, 0),
                Voice("synth_flite_awb", "awb", 0, 0), Voice("synth_flite_kal", "kal16", 0, 0))  # fmt: skip


def engine_version(engine: str) -> str:
    flag = "--version"
    out = subprocess.run([engine, flag], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    # espeak-ng appends its data directory ("... 1.51  Data at: /usr/lib/..."): keep only the version.
    return first[0].split("Data at:")[0].strip() if first else engine


def synthesise(engine: str, voice: Voice, text: str, wav_path: Path) -> None:
    """Run the engine once, writing ``wav_path`` atomically; raises with the engine's message on failure."""
    with atomic_path(wav_path) as tmp:  # removed again if the engine fails
        if engine == "espeak-ng":
            cmd = ["espeak-ng", "-v", voice.voice, "-p", str(voice.pitch), "-s", str(voice.rate), "-w", str(tmp), text]
        else:
            cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", str(tmp)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or os.path.getsize(tmp) <= 44:
            raise RuntimeError(f"{' '.join(cmd[:-1])} failed: {result.stderr.strip() or 'no audio written'}")


def pick_engine(requested: str) -> str | None:
    candidates = ["espeak-ng", "flite"] if requested == "auto" else [requested]
    for engine in candidates:
        if shutil.which(engine):
            return engine
    return None


def build(out_dir: Path, num_speakers: int, num_sentences: int, engine: str) -> List[dict]:
    voices = ESPEAK_VOICES if engine == "espeak-ng" else FLITE_VOICES
    if not 1 <= num_speakers <= len(voices):
        raise ValueError(f"--num_speakers must be in 1..{len(voices)} for {engine} (got {num_speakers})")
    if not 1 <= num_sentences <= len(SENTENCES):
        raise ValueError(f"--num_sentences must be in 1..{len(SENTENCES)} (got {num_sentences})")
    version = engine_version(engine)
    rows = []
    for voice in voices[:num_speakers]:
        for n, text in enumerate(SENTENCES[:num_sentences], start=1):
            rel = Path(voice.name) / f"{voice.name}_{n:03d}.wav"
            synthesise(engine, voice, text, out_dir / rel)
            info = sf.info(str(out_dir / rel))
            settings = f"voice {voice.voice}" + (f", pitch {voice.pitch}, rate {voice.rate} wpm" if voice.rate else "")
            rows.append({
                "path": rel.as_posix(), "source": f"synthetic_{engine}", "speaker": voice.name, "transcript": text,
                "duration": round(info.frames / info.samplerate, 3), "sr": info.samplerate, "channels": info.channels,
                "subtype": info.subtype,
                "license": f"synthetic speech made at prepare time by {engine}; text: Harvard sentences (public domain)",
                "notes": f"SYNTHETIC, not a human recording ({version}; {settings})",
                "source_repo": "", "source_commit": "", "source_path": "",
            })  # fmt: skip
    return rows


def write_manifest(rows: List[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out_dir", required=True, type=Path)
    parser.add_argument("--num_speakers", type=int, default=2)
    parser.add_argument("--num_sentences", type=int, default=4)
    parser.add_argument("--engine", choices=("auto", "espeak-ng", "flite"), default="auto")
    args = parser.parse_args(argv)
    engine = pick_engine(args.engine)
    if engine is None:
        print(f"make_synthetic_speakers: {args.engine if args.engine != 'auto' else 'espeak-ng or flite'} "
              "is not installed; no synthetic speakers added", file=sys.stderr)  # fmt: skip
        return 3
    try:
        rows = build(args.out_dir, args.num_speakers, args.num_sentences, engine)
    except (ValueError, RuntimeError) as err:
        print(f"make_synthetic_speakers: {err}", file=sys.stderr)
        return 2
    write_manifest(rows, args.out_dir / "manifest.csv")
    speakers = sorted({r["speaker"] for r in rows})
    print(f"wrote {len(rows)} SYNTHETIC clips ({engine}) for {len(speakers)} speakers: {', '.join(speakers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
