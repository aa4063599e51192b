"""Per-phoneme durations from a manifest row's ``extra``, in the model's frames and over the model's phonemes.

A row carries ``extra["durations"]``: frames per symbol, at the model's hop unless ``extra["frame_seconds"]``
names another frame length. When the row's symbols are not the model's — a synthetic corpus spoken by a
Piper voice frames its phoneme string as ``^ _ p1 _ p2 … pn _ $``, an Echelon VITS voice as ``_ p1 _ … pn _`` —
the row's ``extra["phonemes"]`` says which phoneme string they frame, and the durations are moved onto the
model's own phonemes of the row's text:

1. each framing symbol's frames go to the phoneme it follows (the leading ones to the first phoneme);
2. the row's phoneme string is aligned to the model's one character by character (``difflib``; both come from
   espeak-ng, so they differ only where the front ends read a number or an abbreviation differently): equal
   stretches keep their frames, a replaced stretch shares its frames evenly, frames of a row-only stretch go
   to the preceding model phoneme, a model-only stretch gets 0 frames (Gaussian upsampling allows it);
3. the frame length is converted on cumulative boundaries (rounding never drifts).
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import List, Optional, Sequence, Tuple

import torch

from processors.data.manifest import ManifestEntry

_DURATION_SLACK = 2  # frames a manifest's durations may differ from the audio (edge rounding of aligners)


def row_durations(entry: ManifestEntry) -> Optional[List[float]]:
    """``extra["durations"]`` as numbers (None when the row has none)."""
    durations = entry.extra.get("durations")
    if durations is None:
        return None
    if not isinstance(durations, list) or not all(isinstance(d, (int, float)) and d >= 0 for d in durations):
        raise ValueError("extra['durations'] must be a list of non-negative numbers (frames per phoneme)")
    return [float(d) for d in durations]


def per_phoneme(durations: Sequence[float], phonemes: str) -> Tuple[List[float], List[str]]:
    """Frames per character of ``phonemes`` from durations over it, bare or framed (blanks, ``^``/``$``).

    Returns the frames and the characters they belong to (``phonemes`` as written, or decomposed (NFD) as
    Piper splits it, whichever the durations count).
    """
    for symbols in (list(phonemes), list(unicodedata.normalize("NFD", phonemes))):
        n = len(symbols)
        # first symbol's position and stride of each framing: bare, blank-interspersed, Piper's ^ _ … _ $
        framing = {n: (0, 1), 2 * n + 1: (1, 2), 2 * n + 3: (2, 2)}.get(len(durations)) if n else None
        if framing is None:
            continue
        first, stride = framing
        starts = [0] + [first + stride * i for i in range(1, n)] + [len(durations)]
        return [float(sum(durations[a:b])) for a, b in zip(starts, starts[1:])], symbols
    raise ValueError(f"{len(durations)} durations fit no framing of the {len(phonemes)} phonemes in extra['phonemes']")


def transfer(durations: Sequence[float], source: Sequence[str], target: Sequence[str]) -> List[float]:
    """Move frames per ``source`` symbol onto the ``target`` symbols by aligning the two sequences."""
    out = [0.0] * len(target)
    matcher = difflib.SequenceMatcher(None, list(source), list(target), autojunk=False)
    for tag, s0, s1, t0, t1 in matcher.get_opcodes():
        frames = float(sum(durations[s0:s1]))
        if tag == "equal":  # added, not set: a leading row-only stretch may have given frames already
            for offset in range(t1 - t0):
                out[t0 + offset] += float(durations[s0 + offset])
        elif tag == "replace":
            share = frames / (t1 - t0)
            for t in range(t0, t1):
                out[t] += share
        elif tag == "delete":
            out[max(t0 - 1, 0)] += frames
    return out


def to_frames(durations: Sequence[float], row_seconds: float, frame_seconds: float) -> List[float]:
    """Durations in frames of ``row_seconds`` -> frames of ``frame_seconds`` on rounded cumulative boundaries."""
    if row_seconds <= 0:
        raise ValueError(f"extra['frame_seconds'] must be positive, got {row_seconds}")
    if row_seconds == frame_seconds and all(float(d).is_integer() for d in durations):
        return [float(d) for d in durations]
    ends = torch.tensor(list(durations), dtype=torch.float64).cumsum(0) * (row_seconds / frame_seconds)
    return torch.cat([torch.zeros(1, dtype=torch.float64), torch.round(ends)]).diff().tolist()


def manifest_durations(entry: ManifestEntry, frame_seconds: float, phonemes: Optional[str] = None,
                       count: Optional[int] = None) -> Optional[List[float]]:
    """The row's durations in frames of ``frame_seconds`` over ``count`` model phonemes (None: none in the row).

    ``phonemes`` (the model front end's phoneme string, one character per id) is needed only when the row's
    durations do not already come one per model phoneme.
    """
    durations = row_durations(entry)
    if durations is None:
        return None
    if count is not None and len(durations) != count:
        row_phonemes = entry.extra.get("phonemes")
        if not isinstance(row_phonemes, str) or phonemes is None:
            raise ValueError(f"{len(durations)} durations for {count} phonemes (and no extra['phonemes'] to "
                             "move them onto this model's phonemes)")
        by_char, source = per_phoneme(durations, row_phonemes)
        durations = transfer(by_char, source, list(phonemes))
    return to_frames(durations, float(entry.extra.get("frame_seconds", frame_seconds)), frame_seconds)


def fit_durations(durations: Sequence[float], frames: int) -> List[float]:
    """Make ``durations`` sum to ``frames`` by adjusting the last phonemes (within the slack)."""
    fitted = [max(0.0, round(d)) for d in durations]
    diff = frames - int(sum(fitted))
    if abs(diff) > _DURATION_SLACK:
        raise ValueError(f"durations sum to {int(sum(fitted))} frames but the audio has {frames}")
    index = len(fitted) - 1
    while diff < 0 and index >= 0:  # take frames from the end, never below 0
        take = min(-diff, fitted[index])
        fitted[index] -= take
        diff += take
        index -= 1
    fitted[-1] += max(diff, 0)
    return fitted
