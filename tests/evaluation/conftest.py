"""Shared data for the evaluation tests: real speech from the mini corpus and tests/data/librispeech."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from evaluation.base import read_audio
from tests.helpers import MINI_CORPUS, REPO_ROOT

LIBRISPEECH = REPO_ROOT / "tests" / "data" / "librispeech"


def mini_manifest() -> List[Dict[str, str]]:
    """Rows of egs/mini/corpus/manifest.csv (path, speaker, transcript, ...)."""
    with (MINI_CORPUS / "manifest.csv").open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if (MINI_CORPUS / row["path"]).is_file()]


def clips_by_speaker(paths: List[Path], speaker_of) -> Dict[str, List[Path]]:
    groups: Dict[str, List[Path]] = {}
    for path in sorted(paths):
        groups.setdefault(speaker_of(path), []).append(path)
    return groups


@pytest.fixture(scope="session")
def vctk_clips() -> Dict[str, List[Path]]:
    """Two real VCTK clips per speaker (mini corpus), keyed by speaker."""
    groups = clips_by_speaker(list((MINI_CORPUS / "vctk").glob("p*/p*.wav")), lambda p: p.parent.name)
    return {spk: files[:2] for spk, files in groups.items() if len(files) >= 2}


@pytest.fixture(scope="session")
def librispeech_clips() -> Dict[str, List[Path]]:
    """Two real LibriSpeech clips per speaker (tests/data/librispeech), keyed by speaker."""
    groups = clips_by_speaker(list(LIBRISPEECH.glob("*.flac")), lambda p: p.name.split("-")[0])
    return {spk: files[:2] for spk, files in groups.items() if len(files) >= 2}


@pytest.fixture(scope="session")
def ljspeech_rows() -> List[Dict[str, str]]:
    """LJSpeech rows of the mini corpus that have a transcript."""
    return [r for r in mini_manifest() if r["path"].startswith("ljspeech/") and r["transcript"].strip()]


@pytest.fixture(scope="session")
def lj_clip() -> Tuple[np.ndarray, int]:
    """A short real LJSpeech clip (22.05 kHz)."""
    return read_audio(MINI_CORPUS / "ljspeech" / "LJ001-0004.wav")
