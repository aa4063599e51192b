"""DNSMOS (speechmos ONNX models) on real speech and noise: ranking, resampling, clipping, silence."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.base import EvalItem, at_rate
from evaluation.dnsmos import DNSMOS
from utils.registry import get


@pytest.fixture(scope="module")
def dnsmos() -> DNSMOS:
    return get("metric", "dnsmos")()


def test_real_speech_scores_above_noise(dnsmos, lj_clip) -> None:
    wav, sr = lj_clip
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(3 * 16000)).astype(np.float32)
    noisy = wav + 0.3 * rng.standard_normal(wav.size).astype(np.float32) * float(np.std(wav))
    rows = dnsmos.score([EvalItem("speech", wav, sr), EvalItem("noisy", noisy, sr), EvalItem("noise", noise, 16000)])
    assert set(rows[0]) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
    speech, noisy_row, noise_row = (r["dnsmos_ovrl"] for r in rows)
    assert speech > 2.8 and noise_row < 1.6, rows
    assert noise_row < noisy_row < speech, rows
    assert rows[1]["dnsmos_bak"] < rows[0]["dnsmos_bak"]


def test_input_is_resampled_and_clipped(dnsmos, lj_clip) -> None:
    wav, sr = lj_clip
    at_16k = dnsmos.score_wave(at_rate(wav, sr, 16000), 16000)
    assert dnsmos.score_wave(wav, sr) == pytest.approx(at_16k, abs=0.02)
    loud = dnsmos.score_wave(wav * 50.0, sr)  # far out of [-1, 1]: clipped, not an error
    assert loud["dnsmos_ovrl"] < at_16k["dnsmos_ovrl"]


def test_silent_output_scores_worst(dnsmos) -> None:
    row = dnsmos.score([EvalItem("silent", np.zeros(16000, np.float32), 16000)])[0]
    assert row == {"dnsmos_sig": 1.0, "dnsmos_bak": 1.0, "dnsmos_ovrl": 1.0}
