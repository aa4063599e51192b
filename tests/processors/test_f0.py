"""processors.f0: pyworld extractors, log-F0 representation, length rules, failure handling, re-targeting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.audio import load_audio
from processors.f0 import (
    align_f0_length,
    extract_f0,
    retarget_f0,
    to_log_f0,
    vc_pad_source,
    voiced_stats,
    world_f0,
    yaapt_f0,
)
from tests.helpers import MINI_CORPUS

WAV = load_audio(MINI_CORPUS / "hierspeechpp_examples" / "reference_3.wav", 16000)[:24000]  # 1.5 s


@pytest.fixture(scope="module")
def yaapt_contour() -> np.ndarray:
    return yaapt_f0(WAV, 16000)


@pytest.mark.parametrize("method", ["dio", "harvest"])
def test_world_agrees_with_yaapt_on_real_speech(method, yaapt_contour):
    f0 = world_f0(WAV, 16000, method=method)
    assert f0.shape == yaapt_contour.shape == (len(WAV) // 80,)
    both = (f0 > 0) & (yaapt_contour > 0)
    assert both.sum() > 0.3 * (yaapt_contour > 0).sum()
    # Two independent trackers agree on pitch where both say voiced (no octave errors on most frames).
    ratio = np.median(f0[both] / yaapt_contour[both])
    assert 0.9 < ratio < 1.1


def test_log_f0_is_zero_where_unvoiced_and_200hz(yaapt_contour):
    log_f0 = to_log_f0(yaapt_contour)
    voiced = torch.from_numpy(yaapt_contour > 0)
    assert torch.all(log_f0[~voiced] == 0)
    torch.testing.assert_close(log_f0[voiced], torch.log(torch.from_numpy(yaapt_contour[voiced]).float() + 1))
    latent_frames = len(WAV) // 320
    assert align_f0_length(log_f0, 4 * latent_frames).shape[-1] == 4 * latent_frames
    longer = align_f0_length(log_f0.unsqueeze(0), log_f0.numel() + 3)
    assert longer.shape == (1, log_f0.numel() + 3) and torch.all(longer[0, -3:] == 0)


def test_vc_padding_rule():
    assert vc_pad_source(np.zeros(1000)).shape[-1] == 1280
    assert vc_pad_source(np.zeros(1280)).shape[-1] == 2560  # a full block more when already a multiple
    assert vc_pad_source(torch.zeros(2, 48000)).shape == (2, 48640)


def test_yaapt_failure_gives_zeros_with_warning():
    with pytest.warns(RuntimeWarning, match="YAAPT failed"):
        f0 = yaapt_f0(np.zeros(8000), 16000)
    assert f0.shape == (100,) and not f0.any()


def test_retarget_moves_voiced_stats(yaapt_contour):
    target = np.where(yaapt_contour > 0, yaapt_contour * 1.8 + 20.0, 0.0)
    moved = retarget_f0(yaapt_contour, target)
    assert np.array_equal(moved == 0, yaapt_contour == 0)
    np.testing.assert_allclose(voiced_stats(moved), voiced_stats(target), rtol=1e-9)
    unvoiced = np.zeros_like(yaapt_contour)
    np.testing.assert_array_equal(retarget_f0(unvoiced, target), unvoiced)  # no NaN from empty stats


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="crepe"):
        extract_f0(WAV, 16000, method="crepe")
