"""F0 metrics: log-F0 Pearson, F0 RMSE in Hz and cents, V/UV precision/recall/F1.

Pipeline per utterance (both sides resampled to 16 kHz, the rate YAAPT's official settings assume):

1. F0 with :func:`processors.f0.extract_f0` (``yaapt`` by default, or pyworld ``dio``/``harvest``), 5 ms hop,
   0 = unvoiced.
2. Alignment (:mod:`evaluation.alignment`): ``dtw`` on mel-cepstra c1..c23 (α 0.42) computed at the F0
   frames, or ``trim``.  Never on the F0 values.
3. Over aligned frame pairs (i_gen, i_ref):

   * voiced-in-both set V = {gen voiced and ref voiced};
   * ``f0_pearson`` = Pearson r of ln F0_gen vs ln F0_ref over V (0 when |V| < 2 or either side is flat);
   * ``f0_rmse_hz`` = sqrt(mean((F0_gen - F0_ref)²)) over V;
   * ``f0_rmse_cents`` = sqrt(mean((1200·log2(F0_gen / F0_ref))²)) over V (NaN when V is empty);
   * V/UV with the reference as truth: TP = both voiced, FP = gen voiced / ref unvoiced, FN = gen unvoiced /
     ref voiced; precision TP/(TP+FP), recall TP/(TP+FN), F1 = 2TP/(2TP+FP+FN) (0 when TP = 0).  The counts
     are kept in the CSV and pooled over the corpus for ``vuv_f1_pooled``.

A silent output has no voiced frame: Pearson 0, V/UV F1 0 (all reference-voiced frames are misses), RMSE NaN
(undefined; it shows as a lower ``n`` in the summary).  An output shorter than 0.2 s is padded with silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from evaluation.alignment import align
from evaluation.base import EvalItem, Metric, Row, at_rate, pad_short
from evaluation.mel_cepstrum import world_mcep
from processors.f0 import extract_f0
from utils.registry import register

F0_SAMPLE_RATE = 16000
F0_FRAME_MS = 5.0  # processors.f0 uses a 5 ms hop for every method


@dataclass
class F0Track:
    """F0 in Hz ``(frames,)`` (0 = unvoiced) and the mel-cepstra ``(frames, order + 1)`` at the same frames."""

    f0: np.ndarray
    mcep: np.ndarray


def analyse(wav: np.ndarray, sample_rate: int, method: str = "yaapt", f0_max: float = 600.0) -> F0Track:
    """F0 and aligned mel-cepstra of one waveform (resampled to 16 kHz)."""
    x = at_rate(wav, sample_rate, F0_SAMPLE_RATE).astype(np.float64)
    f0 = np.asarray(extract_f0(x, F0_SAMPLE_RATE, method=method, f0_max=f0_max), dtype=np.float64)
    if f0.size == 0:
        raise ValueError(f"audio of {len(x) / F0_SAMPLE_RATE:.4f} s is too short for F0 analysis")
    return F0Track(f0=f0, mcep=world_mcep(x, F0_SAMPLE_RATE, F0_FRAME_MS, f0=f0))


def median_f0_hz(wavs: Sequence[Tuple[np.ndarray, int]], method: str = "harvest", f0_max: float = 600.0,
                 max_seconds: Optional[float] = 60.0) -> float:
    """Median F0 in Hz over the voiced frames of utterances ``[(wav (T,), sample_rate)]`` (0.0 when none is
    voiced): where a voice or a reader speaks. The utterances after the first ``max_seconds`` of audio are left
    out (a minute is plenty for a median; harvest takes ~0.2 CPU s a second of audio).

    ``harvest`` because the faster trackers were an octave off on a synthetic voice: on 8 sentences of the
    Piper joe voice dio gave 154 Hz and YAAPT 92 Hz against harvest's 115 (piper-tts's joe: 106), while on
    the readers of ``egs/tts/finetune`` all three agreed within 7 %."""
    voiced, seconds = [], 0.0
    for wav, rate in wavs:
        if max_seconds is not None and seconds >= max_seconds:
            break
        seconds += len(wav) / rate
        f0 = np.asarray(extract_f0(at_rate(wav, rate, F0_SAMPLE_RATE).astype(np.float64), F0_SAMPLE_RATE,
                                   method=method, f0_max=f0_max))
        voiced.append(f0[f0 > 0])
    voiced_frames = np.concatenate(voiced) if voiced else np.zeros(0)
    return float(np.median(voiced_frames)) if voiced_frames.size else 0.0


def semitones(f0_hz: float, reference_hz: float) -> float:
    """How many semitones ``f0_hz`` lies above ``reference_hz`` (negative: below)."""
    return 12.0 * math.log2(f0_hz / reference_hz)


def f0_scores(gen_f0: np.ndarray, ref_f0: np.ndarray, path: np.ndarray) -> Dict[str, float]:
    """All F0 scores over aligned frame pairs ``path`` ``(L, 2)`` of (generated, reference) indices."""
    g = gen_f0[path[:, 0]]
    r = ref_f0[path[:, 1]]
    gv, rv = g > 0, r > 0
    both = gv & rv
    tp, fp, fn = int(both.sum()), int((gv & ~rv).sum()), int((~gv & rv).sum())
    scores: Dict[str, float] = {
        "f0_pearson": 0.0,
        "f0_rmse_hz": math.nan,
        "f0_rmse_cents": math.nan,
        "vuv_precision": tp / (tp + fp) if tp + fp else 0.0,
        "vuv_recall": tp / (tp + fn) if tp + fn else 0.0,
        "vuv_f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "vuv_tp": float(tp),
        "vuv_fp": float(fp),
        "vuv_fn": float(fn),
        "f0_voiced_pairs": float(tp),
    }
    if tp == 0:
        return scores
    gb, rb = g[both], r[both]
    scores["f0_rmse_hz"] = float(np.sqrt(np.mean((gb - rb) ** 2)))
    scores["f0_rmse_cents"] = float(np.sqrt(np.mean((1200.0 * np.log2(gb / rb)) ** 2)))
    lg, lr = np.log(gb), np.log(rb)
    if tp >= 2 and lg.std() > 0 and lr.std() > 0:
        scores["f0_pearson"] = float(np.corrcoef(lg, lr)[0, 1])
    return scores


def silent_output_scores(ref_f0: np.ndarray) -> Dict[str, float]:
    """Scores of an output with no voiced frame against ``ref_f0``: every voiced reference frame is a miss."""
    fn = int((ref_f0 > 0).sum())
    return {"f0_pearson": 0.0, "f0_rmse_hz": math.nan, "f0_rmse_cents": math.nan, "vuv_precision": 0.0,
            "vuv_recall": 0.0, "vuv_f1": 0.0, "vuv_tp": 0.0, "vuv_fp": 0.0, "vuv_fn": float(fn),
            "f0_voiced_pairs": 0.0}


@register("metric", "f0")
class F0Metrics(Metric):
    """F0 Pearson (log), RMSE (Hz, cents) and V/UV scores of generated vs reference audio."""

    name = "f0"
    columns = {"f0_pearson": True, "f0_rmse_hz": False, "f0_rmse_cents": False, "vuv_f1": True,
               "vuv_precision": True, "vuv_recall": True}
    needs = ("reference",)
    count_columns = ("vuv_tp", "vuv_fp", "vuv_fn", "f0_voiced_pairs")

    def __init__(self, f0_method: str = "yaapt", align: str = "dtw", f0_max: float = 600.0) -> None:
        self.method = f0_method
        self.alignment = align
        self.f0_max = f0_max

    def score_one(self, item: EvalItem) -> Row:
        ref = analyse(item.reference, item.reference_sr, self.method, self.f0_max)  # type: ignore[arg-type]
        if item.generated_is_silent:
            return silent_output_scores(ref.f0)
        gen = analyse(pad_short(item.generated, item.generated_sr), item.generated_sr, self.method, self.f0_max)
        path = align(gen.mcep[:, 1:], ref.mcep[:, 1:], self.alignment)
        return f0_scores(gen.f0, ref.f0, path)

    def corpus(self, rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
        tp = fp = fn = 0.0
        for row in rows:
            values = [row.get(k, math.nan) for k in ("vuv_tp", "vuv_fp", "vuv_fn")]
            if any(math.isnan(v) for v in values):
                continue
            tp, fp, fn = tp + values[0], fp + values[1], fn + values[2]
        total = 2 * tp + fp + fn
        return {"vuv_f1_pooled": 2 * tp / total if total else math.nan}

    def corpus_columns(self) -> Dict[str, bool]:
        return {"vuv_f1_pooled": True}


def contour_pairs(gen: F0Track, ref: F0Track, path: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
    """Aligned contours for plotting: reference time axis (s) and both F0 sequences (NaN where unvoiced)."""
    if path.size == 0:
        return None
    g = gen.f0[path[:, 0]].astype(float)
    r = ref.f0[path[:, 1]].astype(float)
    g[g <= 0] = np.nan
    r[r <= 0] = np.nan
    return {"time": path[:, 1] * F0_FRAME_MS / 1000.0, "generated": g, "reference": r}
