"""Waveform helpers shared by inference pipelines: prompt replication, output level, long-input pieces."""

from __future__ import annotations

from typing import Iterable, Iterator, List, Tuple, TypeVar

import numpy as np

from processors.audio import AudioError
from utils.progress import report_piece

T = TypeVar("T")


def replicate_prompt(wav: np.ndarray, min_samples: int) -> np.ndarray:
    """Repeat a short prompt end to end until it lasts at least ``min_samples`` (whole copies)."""
    if wav.shape[-1] == 0:
        raise AudioError("empty prompt")
    if wav.shape[-1] >= min_samples:
        return wav
    copies = -(-min_samples // wav.shape[-1])
    return np.tile(wav, copies)


def normalize_level(wav: np.ndarray, mode: str, prompt_peak: float) -> np.ndarray:
    """Official output scaling: ``max`` -> peak 0.999, ``prompt`` -> the prompt's peak, ``none`` -> unchanged."""
    if mode == "none":
        return wav
    if mode not in ("max", "prompt"):
        raise ValueError(f"scale_norm must be 'max', 'prompt' or 'none', got {mode!r}")
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak <= 0.0:
        return wav
    target = 0.999 if mode == "max" else prompt_peak
    return (wav / peak * target).astype(np.float32)


def split_points(wav: np.ndarray, max_samples: int, frame: int = 320, min_tail: int = 16000) -> List[Tuple[int, int]]:
    """Cut ``(N,)`` into pieces of at most ``max_samples``, each cut at the quietest ``frame`` of the last
    fifth of its window (a pause rather than the middle of a word). A last piece shorter than ``min_tail``
    samples joins the one before when both fit in ``max_samples`` (else it stays on its own)."""
    total = wav.shape[-1]
    if max_samples <= 0 or total <= max_samples:
        return [(0, total)]
    pieces, start = [], 0
    while total - start > max_samples:
        lo, hi = start + (4 * max_samples) // 5, start + max_samples
        window = wav[lo:hi]
        frames = window[: (window.shape[-1] // frame) * frame].reshape(-1, frame)
        cut = lo + frame * int(np.argmin((frames ** 2).mean(axis=1))) if frames.size else hi
        cut = max(cut, start + frame)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < min_tail \
            and pieces[-1][1] - pieces[-2][0] <= max_samples:
        pieces[-2:] = [(pieces[-2][0], pieces[-1][1])]
    return pieces


def progress(iterable: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """Pieces of one long item, each reported to the open progress reporter (:func:`utils.progress.report_piece`:
    ``sentences 3/12`` beside the item on the bar or in the plain progress lines)."""
    for done, value in enumerate(iterable):
        if total > 1:
            report_piece(done, total, desc)
        yield value


def synthetic_voice(samples: int, rate: int = 16000, f0: float = 140.0) -> np.ndarray:
    """A steady voiced-like test signal: a sine at ``f0`` under a Hann window plus a little seeded noise,
    float32 ``(samples,)``. For warm-up calls (its F0 is found, every network path runs); not speech."""
    t = np.arange(samples) / rate
    noise = np.random.default_rng(0).standard_normal(samples)
    return (0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(samples) + 0.01 * noise).astype(np.float32)
