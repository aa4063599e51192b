"""F0 metrics on real speech: identity, a 2-semitone shift, silence, alignment choices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.base import EvalItem
from evaluation.pitch import F0Metrics, f0_scores
from evaluation.alignment import trim_path

SEMITONES = 2.0


def world_pitch_shift(wav: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Resynthesise with WORLD keeping envelope and aperiodicity, F0 scaled by 2^(semitones/12)."""
    import pyworld

    x = wav.astype(np.float64)
    f0, times = pyworld.harvest(x, sr, frame_period=5.0)
    envelope = pyworld.cheaptrick(x, f0, times, sr)
    aperiodicity = pyworld.d4c(x, f0, times, sr)
    return pyworld.synthesize(f0 * 2.0 ** (semitones / 12.0), envelope, aperiodicity, sr, 5.0).astype(np.float32)


@pytest.fixture(scope="module")
def shifted(lj_clip):
    wav, sr = lj_clip
    return world_pitch_shift(wav, sr, SEMITONES)


@pytest.mark.parametrize("method", ["yaapt", "dio"])
def test_identity_and_two_semitone_shift(lj_clip, shifted, method) -> None:
    wav, sr = lj_clip
    metric = F0Metrics(f0_method=method, align="dtw")
    same, moved = metric.score([EvalItem("same", wav, sr, wav, sr), EvalItem("shift", shifted, sr, wav, sr)])
    print(method, {k: round(v, 3) for k, v in moved.items()})
    assert same["f0_pearson"] == pytest.approx(1.0, abs=1e-9)
    assert same["f0_rmse_hz"] == 0.0 and same["f0_rmse_cents"] == 0.0 and same["vuv_f1"] == 1.0
    assert moved["f0_pearson"] > 0.95
    assert moved["f0_rmse_cents"] == pytest.approx(100.0 * SEMITONES, abs=40.0)
    assert moved["vuv_f1"] > 0.8


def test_trim_alignment_on_same_timing(lj_clip, shifted) -> None:
    wav, sr = lj_clip
    row = F0Metrics(f0_method="dio", align="trim").score([EvalItem("shift", shifted, sr, wav, sr)])[0]
    assert row["f0_pearson"] > 0.95
    assert row["f0_rmse_cents"] == pytest.approx(100.0 * SEMITONES, abs=40.0)


def test_silent_and_empty_outputs_score_worst(lj_clip) -> None:
    wav, sr = lj_clip
    metric = F0Metrics(f0_method="dio")
    rows = metric.score([EvalItem("silent", np.zeros_like(wav), sr, wav, sr),
                         EvalItem("empty", np.zeros(0, dtype=np.float32), sr, wav, sr)])
    for row in rows:
        assert row["f0_pearson"] == 0.0 and row["vuv_f1"] == 0.0 and row["vuv_recall"] == 0.0
        assert row["vuv_fn"] > 0 and math.isnan(row["f0_rmse_cents"])
    pooled = metric.corpus(rows)
    assert pooled["vuv_f1_pooled"] == 0.0


def test_f0_scores_definitions() -> None:
    ref = np.array([0.0, 100.0, 200.0, 150.0, 0.0, 120.0])
    gen = np.array([110.0, 0.0, 400.0, 300.0, 0.0, 240.0])  # an octave up where both are voiced
    scores = f0_scores(gen, ref, trim_path(len(gen), len(ref)))
    assert scores["vuv_tp"] == 3 and scores["vuv_fp"] == 1 and scores["vuv_fn"] == 1
    assert scores["vuv_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert scores["f0_pearson"] == pytest.approx(1.0)  # log-F0 is shifted, not reshaped
    assert scores["f0_rmse_cents"] == pytest.approx(1200.0)
    assert scores["f0_rmse_hz"] == pytest.approx(np.sqrt(np.mean([200.0**2, 150.0**2, 120.0**2])))
    flat = f0_scores(np.array([100.0, 100.0]), np.array([90.0, 120.0]), trim_path(2, 2))
    assert flat["f0_pearson"] == 0.0  # a flat contour has no correlation, not NaN and not 1


def test_resampling_shift_dtw_on_mel_cepstra_recovers_the_time_scaling(vctk_clips) -> None:
    """Resampling by 2^(2/12) raises the pitch 2 semitones and shortens the clip by the same factor."""
    import soxr

    from evaluation.alignment import dtw_path
    from evaluation.base import read_audio
    from evaluation.pitch import analyse

    wav, sr = read_audio(sorted(vctk_clips.values())[0][0])
    factor = 2.0 ** (SEMITONES / 12.0)
    faster = soxr.resample(wav, sr, int(round(sr / factor)))  # played back at sr
    gen, ref = analyse(faster, sr), analyse(wav, sr)
    path = dtw_path(gen.mcep[:, 1:], ref.mcep[:, 1:])
    deviation = np.abs(path[:, 0] - path[:, 1] / factor)  # frames away from the true linear warp
    assert np.median(deviation) < 1.0 and np.percentile(deviation, 90) < 3.0
    scores = f0_scores(gen.f0, ref.f0, path)
    assert scores["f0_pearson"] > 0.95
    assert scores["f0_rmse_cents"] == pytest.approx(100.0 * SEMITONES, abs=40.0)


def test_median_f0_follows_a_pitch_shift_and_skips_silence(lj_clip) -> None:
    """The median F0 of a real clip moves by the semitones a WORLD resynthesis shifted it; silence has none;
    utterances after ``max_seconds`` of audio are left out."""
    from evaluation.pitch import median_f0_hz, semitones

    wav, sr = lj_clip
    up = world_pitch_shift(wav, sr, 7.0)
    here, there = median_f0_hz([(wav, sr)]), median_f0_hz([(up, sr)])
    assert 150.0 < here < 300.0  # LJSpeech's reader
    assert semitones(there, here) == pytest.approx(7.0, abs=0.5)  # a median: the voiced frames differ a little
    assert semitones(220.0, 110.0) == pytest.approx(12.0) and semitones(110.0, 220.0) == pytest.approx(-12.0)
    assert median_f0_hz([(np.zeros(sr, np.float32), sr)]) == 0.0
    assert median_f0_hz([(wav, sr), (up, sr)], max_seconds=len(wav) / sr / 2) == here
