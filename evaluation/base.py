"""What every metric sees and returns: :class:`EvalItem`, :class:`Metric`, audio helpers.

An :class:`EvalItem` is one generated utterance paired *by id* with its reference recording, the prompt the
system was conditioned on and the reference transcript.  A :class:`Metric` scores a batch of items and returns
one row (``{column: value}``) per item; columns listed in :attr:`Metric.columns` are reported in the summary
table, other columns (error counts, true-positive counts) feed corpus-level aggregates in
:meth:`Metric.corpus`.

Silence policy (never let an empty output score well): an output is *silent* when it has no samples or its
peak is below -60 dBFS (:data:`SILENCE_PEAK`).  Every metric documents what it gives a silent output; the
rule is "worst, not best" (WER 100 %, SIM 0, F0 Pearson 0, V/UV F1 0, large MCD / log-mel distance).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from processors.audio import audio_info, load_audio, resample

logger = logging.getLogger(__name__)

#: Peak amplitude below which an output counts as silent (-60 dBFS).
SILENCE_PEAK = 10.0 ** (-60.0 / 20.0)
#: Outputs shorter than this are padded with silence before frame analyses (a blip is not a valid utterance,
#: and STFT/WORLD analyses need a few frames).
MIN_ANALYSIS_SECONDS = 0.2

Row = Dict[str, Any]  # column -> float (or str for transcripts)


@dataclass
class EvalItem:
    """One generated utterance and what it is compared with.

    Audio arrays are mono float32 ``(T,)`` at their own rate; ``None`` where the manifest has no such input.
    """

    utt_id: str
    generated: np.ndarray
    generated_sr: int
    reference: Optional[np.ndarray] = None
    reference_sr: Optional[int] = None
    prompt: Optional[np.ndarray] = None
    prompt_sr: Optional[int] = None
    text: Optional[str] = None
    speaker: Optional[str] = None

    @property
    def generated_is_silent(self) -> bool:
        return is_silent(self.generated)


class Metric:
    """Base class of every registered metric (``@register("metric", name)`` on the subclass).

    Subclasses set :attr:`columns` (reported column -> ``True`` when higher is better), :attr:`needs`
    (inputs besides the generated audio: ``"reference"``, ``"prompt"``, ``"text"``) and implement
    :meth:`score`.  Models are loaded once, in ``__init__`` or lazily on first use, never per item.
    """

    name: ClassVar[str] = "metric"
    columns: ClassVar[Dict[str, bool]] = {}
    count_columns: ClassVar[Tuple[str, ...]] = ()  # CSV-only columns feeding :meth:`corpus`
    needs: ClassVar[Tuple[str, ...]] = ()

    def score(self, items: Sequence[EvalItem]) -> List[Row]:
        """Score a batch; one row per item, in the same order.

        The default scores items one by one with :meth:`score_one` and gives NaN rows to items that lack an
        input (:meth:`usable`); metrics with batched models override this method instead.
        """
        empty = list(self.columns) + list(self.count_columns)
        return [self.score_one(item) if self.usable(item) is None else nan_row(empty) for item in items]

    def score_one(self, item: EvalItem) -> Row:
        """Score one item that has every needed input."""
        raise NotImplementedError

    def corpus(self, rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
        """Corpus-level values computed from all rows of one system (e.g. pooled WER); none by default."""
        return {}

    def corpus_columns(self) -> Dict[str, bool]:
        """Names of the values :meth:`corpus` returns -> higher is better."""
        return {}

    def usable(self, item: EvalItem) -> Optional[str]:
        """``None`` when ``item`` has every input this metric needs, else the reason it is skipped."""
        for need in self.needs:
            if need == "reference" and item.reference is None:
                return "no reference audio"
            if need == "prompt" and item.prompt is None:
                return "no prompt audio"
            if need == "text" and not (item.text or "").strip():
                return "no reference transcript"
        return None


def nan_row(columns: Mapping[str, bool] | Sequence[str]) -> Row:
    """A row of NaNs (metric not applicable to this item)."""
    return {name: math.nan for name in columns}


def is_silent(wav: Optional[np.ndarray], peak: float = SILENCE_PEAK) -> bool:
    """True for ``None``, empty audio, or audio whose peak is below ``peak`` (default -60 dBFS)."""
    if wav is None or wav.size == 0:
        return True
    return float(np.max(np.abs(wav))) < peak


def read_audio(path: Path) -> Tuple[np.ndarray, int]:
    """Mono float32 audio at the file's own rate; an empty (0-sample) file gives an empty array, not an error.

    Generated outputs are allowed to be empty (they then score worst); everything else about a broken file is
    an error naming it (from :func:`processors.audio.load_audio`).
    """
    info = audio_info(path)
    if info.frames == 0:
        return np.zeros(0, dtype=np.float32), int(info.samplerate)
    return load_audio(path, target_sr=None), int(info.samplerate)


def at_rate(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """``wav`` resampled to ``target_sr`` (soxr HQ), float32; empty stays empty."""
    if wav.size == 0:
        return wav.astype(np.float32)
    return resample(np.asarray(wav, dtype=np.float32), sr, target_sr)


def pad_short(wav: np.ndarray, sr: int, seconds: float = MIN_ANALYSIS_SECONDS) -> np.ndarray:
    """``wav`` zero-padded at the end to at least ``seconds`` (unchanged when already long enough)."""
    need = int(round(seconds * sr)) - wav.size
    return np.pad(wav, (0, need)).astype(np.float32, copy=False) if need > 0 else wav


def silence_like(reference: np.ndarray) -> np.ndarray:
    """All-zero stand-in for an empty output, as long as the reference (so frame analyses stay defined)."""
    return np.zeros(max(reference.size, 1), dtype=np.float32)


def length_batches(lengths: Sequence[int], batch_size: int) -> List[List[int]]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
