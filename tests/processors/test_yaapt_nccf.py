"""processors.yaapt_nccf: the compiled NCCF step gives amfm_decompy's pitch candidates and merits bit for bit.

YAAPT's dynamic programming breaks exact ties between candidates, so a 1e-16 change in a merit can move the
final F0 of a frame: equality here is checked with ``array_equal``, never a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from processors.audio import load_audio
from processors.f0 import F0_MAX_TTV, F0_MAX_VC, yaapt_f0
from processors.yaapt_nccf import available, time_track, use_fast_time_track
from tests.helpers import MINI_CORPUS

pytestmark = pytest.mark.skipif(not available(), reason="numba is not installed")
pYAAPT = pytest.importorskip("amfm_decompy.pYAAPT")

CLIPS = sorted(MINI_CORPUS.rglob("*.wav"))


def _compare_time_tracks(monkeypatch: pytest.MonkeyPatch, wav: np.ndarray, f0_max: float) -> int:
    """Run YAAPT once; at each time_track call compare ours with the original on the same inputs."""
    original = pYAAPT.time_track
    calls = []

    def both(signal, spec_pitch, pitch_std, pitch, parameters):
        expected = original(signal, spec_pitch, pitch_std, pitch, parameters)
        got = time_track(signal, spec_pitch, pitch_std, pitch, parameters)
        for want, have in zip(expected, got):
            assert want.shape == have.shape
            np.testing.assert_array_equal(have, want)
        calls.append(1)
        return expected

    monkeypatch.setattr(pYAAPT, "time_track", both)
    yaapt_f0(wav, 16000, f0_max=f0_max, fast=False)
    monkeypatch.setattr(pYAAPT, "time_track", original)
    return len(calls)


def test_candidates_and_merits_equal_on_every_bundled_clip(monkeypatch):
    assert len(CLIPS) >= 20
    for path in CLIPS:
        assert _compare_time_tracks(monkeypatch, load_audio(path, 16000), F0_MAX_VC) == 2, path


def test_equal_on_edge_signals(monkeypatch):
    """Digital silence (0/0 correlations), an exactly periodic tone (tied peaks), clipping, a click."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = np.concatenate([np.zeros(4000), 0.5 * np.sin(2 * np.pi * 200 * t[:8000]), np.zeros(4000)])
    clipped = np.clip(3 * np.sin(2 * np.pi * 123 * t) + 0.1 * rng.standard_normal(16000), -1, 1)
    click = np.zeros(12000)
    click[6000] = 1.0
    for wav in (tone, clipped, click + 1e-4 * rng.standard_normal(12000)):
        for f0_max in (F0_MAX_VC, F0_MAX_TTV):
            assert _compare_time_tracks(monkeypatch, wav.astype(np.float32), f0_max) == 2


@pytest.mark.parametrize("f0_max", [F0_MAX_VC, F0_MAX_TTV])
def test_final_f0_identical(f0_max):
    for path in CLIPS[::5]:
        wav = load_audio(path, 16000)
        np.testing.assert_array_equal(yaapt_f0(wav, f0_max=f0_max, fast=True),
                                      yaapt_f0(wav, f0_max=f0_max, fast=False))


def test_library_function_is_restored_even_on_error():
    original = pYAAPT.time_track
    with use_fast_time_track(pYAAPT):
        assert pYAAPT.time_track is time_track
    assert pYAAPT.time_track is original
    with pytest.raises(RuntimeError):
        with use_fast_time_track(pYAAPT):
            raise RuntimeError("boom")
    assert pYAAPT.time_track is original
