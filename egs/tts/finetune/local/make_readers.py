#!/usr/bin/env python3
"""The readers of the fine-tuning recipe: folders of one person's recordings, as ``echelon-finetune --audio_dir``
takes them, built from the real-speech root (``manifest.csv``: path, source, speaker, transcript, duration,
license, notes, source_repo, source_commit, source_path).

    make_readers.py --real_data ../shared/data/real --out_dir exp/finetune/readers [--readers "ljspeech vctk_p225"]

Each ``OUT_DIR/<reader>/`` holds the reader's wavs (copied), their transcripts (LJSpeech readers: a
``metadata.csv`` of ``id|text`` lines; VCTK readers: a ``.txt`` beside each wav; ``ljspeech_notext``: none, so
Whisper transcribes) and ``SOURCES.md`` with the licence and attribution of every clip. The ``ljspeech_<N>``
subsets take the LJSpeech clips in manifest order until N of audio is reached (the curve of SIM against
minutes of data). A folder is rebuilt whole on every call. Errors: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional


class ReaderError(Exception):
    """A reader cannot be built (the message is the one-line error)."""


@dataclass(frozen=True)
class ReaderSpec:
    """Which manifest rows make a reader: their source folder and speaker, the first ``seconds`` of them (in
    manifest order; None: all), and how its transcripts are given ("metadata", "txt" or None: withheld)."""

    source: str
    speaker: str
    transcripts: Optional[str]
    seconds: Optional[float] = None
    about: str = ""


def _ljspeech(transcripts: Optional[str], seconds: Optional[float], about: str) -> ReaderSpec:
    return ReaderSpec("ljspeech_coqui", "ljspeech", transcripts, seconds, about)


def _vctk(speaker: str) -> ReaderSpec:
    # vctk_autovc's 10 clips per speaker (16 kHz); vctk_starganv2vc's p228_023 repeats one of them at 48 kHz.
    return ReaderSpec("vctk_autovc", f"vctk_{speaker}", "txt", None, f"VCTK speaker {speaker}, with transcripts")


READERS: Dict[str, ReaderSpec] = {
    "ljspeech": _ljspeech("metadata", None, "LJSpeech (Linda Johnson), every clip, with transcripts"),
    "ljspeech_notext": _ljspeech(None, None, "The same LJSpeech clips with their transcripts withheld"),
    **{f"vctk_{s}": _vctk(s) for s in ("p225", "p226", "p227", "p228")},
    "ljspeech_15s": _ljspeech("metadata", 15.0, "The first LJSpeech clips until 15 s, with transcripts"),
    "ljspeech_30s": _ljspeech("metadata", 30.0, "The first LJSpeech clips until 30 s, with transcripts"),
    "ljspeech_1min": _ljspeech("metadata", 60.0, "The first LJSpeech clips until 1 min, with transcripts"),
}


def read_manifest(real_data: Path) -> List[Dict[str, str]]:
    if not real_data.is_dir():
        raise ReaderError(f"--real_data {real_data}: no such directory (the real-speech root with manifest.csv)")
    manifest = real_data / "manifest.csv"
    if not manifest.is_file():
        raise ReaderError(f"--real_data {real_data}: no manifest.csv in it")
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"path", "source", "speaker", "transcript", "duration", "license"} - set(rows[0] if rows else {})
    if missing:
        raise ReaderError(f"{manifest}: no column(s) {', '.join(sorted(missing))}")
    return rows


def select_clips(rows: List[Dict[str, str]], name: str, spec: ReaderSpec) -> List[Dict[str, str]]:
    """The reader's rows in manifest order (for a subset: until ``spec.seconds`` of audio is reached)."""
    chosen, total = [], 0.0
    for row in rows:
        if row["source"] != spec.source or row["speaker"] != spec.speaker:
            continue
        if spec.seconds is not None and total >= spec.seconds:
            break
        chosen.append(row)
        total += float(row["duration"] or 0.0)
    if not chosen:
        raise ReaderError(f"reader {name}: the manifest has no clip of source {spec.source}, speaker {spec.speaker}")
    return chosen


def total_seconds(clips: List[Dict[str, str]]) -> float:
    return sum(float(c["duration"] or 0.0) for c in clips)


def clean_transcript(row: Dict[str, str]) -> str:
    text = " ".join(row["transcript"].split())
    if "|" in text:
        raise ReaderError(f"{row['path']}: its transcript has a '|', which metadata.csv cannot hold")
    return text


def sources_markdown(name: str, spec: ReaderSpec, clips: List[Dict[str, str]], real_data: Path) -> str:
    """SOURCES.md: where each clip comes from and under which licence (kept with every copy, as CC BY asks)."""
    lines = [f"# Reader {name}", "", f"{spec.about}: {len(clips)} clips, {total_seconds(clips):.1f} s, copied from "
             f"`{real_data}` (its manifest.csv, source `{spec.source}`, speaker `{spec.speaker}`).", "",
             "Licences:", ""]
    lines += [f"- {licence}" for licence in sorted({c["license"] for c in clips})]
    notes = sorted({c.get("notes", "") for c in clips} - {""})
    lines += ["", "Notes (manifest.csv):", ""] + [f"- {note}" for note in notes] if notes else []
    lines += ["", "| file | seconds | licence | taken from |", "|---|---|---|---|"]
    for clip in clips:
        origin = " ".join(part for part in (clip.get("source_repo", ""), clip.get("source_commit", ""),
                                            clip.get("source_path", "")) if part)
        lines.append(f"| {Path(clip['path']).name} | {clip['duration']} | {clip['license']} | {origin} |")
    return "\n".join(lines) + "\n"


def build_reader(name: str, rows: List[Dict[str, str]], real_data: Path, out_dir: Path) -> str:
    """Write OUT_DIR/<name>/ (into a temporary folder first, so a failed build leaves no half reader)."""
    spec = READERS[name]
    clips = select_clips(rows, name, spec)
    target, tmp = out_dir / name, out_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    metadata = []
    for clip in clips:
        audio = real_data / clip["path"]
        if not audio.is_file():
            raise ReaderError(f"{audio}: listed in manifest.csv but missing")
        shutil.copyfile(audio, tmp / audio.name)
        text = clean_transcript(clip) if spec.transcripts else ""
        if spec.transcripts == "txt" and text:
            (tmp / f"{audio.stem}.txt").write_text(text + "\n", encoding="utf-8")
        elif spec.transcripts == "metadata" and text:
            metadata.append(f"{audio.stem}|{text}\n")
    if metadata:
        (tmp / "metadata.csv").write_text("".join(metadata), encoding="utf-8")
    (tmp / "SOURCES.md").write_text(sources_markdown(name, spec, clips, real_data), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    given = len(metadata) + len(list(target.glob("*.txt")))
    return f"{name}: {len(clips)} clips, {total_seconds(clips):.1f} s, {given} transcripts -> {target}"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the reader names (one line) and exit")
    parser.add_argument("--real_data", type=Path, help="the real-speech root (manifest.csv) [required]")
    parser.add_argument("--out_dir", type=Path, help="the reader folders go here [required]")
    parser.add_argument("--readers", default=" ".join(READERS),
                        help=f"space-separated reader names [all: {' '.join(READERS)}]")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        print(" ".join(READERS))
        return 0
    names = args.readers.split()
    try:
        if args.real_data is None or args.out_dir is None:
            raise ReaderError("--real_data and --out_dir are required")
        unknown = [n for n in names if n not in READERS]
        if unknown or not names:
            raise ReaderError(f"--readers: unknown reader(s) {' '.join(unknown) or '(none given)'}; "
                              f"choose from {' '.join(READERS)}")
        rows = read_manifest(args.real_data)
        for name in names:
            print(build_reader(name, rows, args.real_data.resolve(), args.out_dir))
    except (ReaderError, OSError, ValueError) as err:
        print(f"make_readers.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
