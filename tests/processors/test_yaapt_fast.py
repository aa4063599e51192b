"""processors.yaapt_fast: the compiled NCCF step gives amfm_decompy's pitch candidates and merits bit for bit.

YAAPT's dynamic programming breaks exact ties between candidates, so a 1e-16 change in a merit can move the
final F0 of a frame (a 2e-16 relative perturbation of the merits changed 1-5 frames of most clips we tried):
equality here is checked with ``array_equal``, never a tolerance.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from processors.audio import load_audio
from processors.f0 import F0_MAX_TTV, F0_MAX_VC, yaapt_f0
from processors.yaapt_fast import FAST_STEPS, available, use_fast_yaapt
from tests.helpers import MINI_CORPUS

pytestmark = pytest.mark.skipif(not available(), reason="numba is not installed")
pYAAPT = pytest.importorskip("amfm_decompy.pYAAPT")

CLIPS = sorted(MINI_CORPUS.rglob("*.wav"))


def _compare_steps(monkeypatch: pytest.MonkeyPatch, wav: np.ndarray, f0_max: float) -> set:
    """Run YAAPT once; at each call of a replaced step compare ours with the original on the same inputs."""
    originals = {name: getattr(pYAAPT, name) for name in FAST_STEPS}
    calls = []

    def checked(name):
        def both(*args):
            if name == "nlfer":  # returns nothing: it sets the pitch object's energy, voicing and frame positions
                ours = copy.deepcopy(args)
                FAST_STEPS[name](*ours)
                originals[name](*args)
                assert vars(ours[1]).keys() == vars(args[1]).keys()
                for key, want in vars(args[1]).items():
                    np.testing.assert_array_equal(vars(ours[1])[key], want, err_msg=key)
                calls.append(name)
                return None
            got = FAST_STEPS[name](*copy.deepcopy(args))  # path1 overwrites its cost matrix in place
            expected = originals[name](*args)
            pairs = zip((expected,), (got,)) if name == "path1" else zip(expected, got)
            for want, have in pairs:
                assert np.shape(want) == np.shape(have)
                np.testing.assert_array_equal(have, want)
            calls.append(name)
            return expected
        return both

    for name in FAST_STEPS:
        monkeypatch.setattr(pYAAPT, name, checked(name))
    yaapt_f0(wav, 16000, f0_max=f0_max, fast=False)
    for name, original in originals.items():
        monkeypatch.setattr(pYAAPT, name, original)
    return set(calls)


def test_candidates_and_merits_equal_on_every_bundled_clip(monkeypatch):
    assert len(CLIPS) >= 20
    for path in CLIPS:
        assert _compare_steps(monkeypatch, load_audio(path, 16000), F0_MAX_VC) == set(FAST_STEPS), path


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
            assert _compare_steps(monkeypatch, wav.astype(np.float32), f0_max) == set(FAST_STEPS)


@pytest.mark.parametrize("f0_max", [F0_MAX_VC, F0_MAX_TTV])
def test_final_f0_identical(f0_max):
    for path in CLIPS[::5]:
        wav = load_audio(path, 16000)
        np.testing.assert_array_equal(yaapt_f0(wav, f0_max=f0_max, fast=True),
                                      yaapt_f0(wav, f0_max=f0_max, fast=False))


def test_library_functions_are_restored_even_on_error():
    originals = {name: getattr(pYAAPT, name) for name in FAST_STEPS}
    with use_fast_yaapt(pYAAPT):
        assert all(getattr(pYAAPT, name) is fast for name, fast in FAST_STEPS.items())
    assert all(getattr(pYAAPT, name) is original for name, original in originals.items())
    with pytest.raises(RuntimeError):
        with use_fast_yaapt(pYAAPT):
            raise RuntimeError("boom")
    assert all(getattr(pYAAPT, name) is original for name, original in originals.items())


def test_shc_peaks_equal_library_peaks_row_by_row():
    """The batched spectral peak picker against ``pYAAPT.peaks`` on rows built to reach each of its answers:
    too flat a row, no peak, one to three peaks (sorted), ``maxpeaks`` or more peaks (the library's "none"),
    a row of zeros (0/0 mean), a row below the normalisation epsilon, and exactly tied peaks."""
    from processors.yaapt_fast import _shc_lag_range, shc_peaks

    # the library's defaults with the VC F0 ceiling; spec_track's SHC geometry at 16 kHz, 8192-point FFTs
    parameters = {"shc_thresh1": 5.0, "shc_thresh2": 1.25, "shc_pwidth": 50.0, "f0_min": 60.0, "f0_max": F0_MAX_VC}
    delta, maxpeaks = 16000 / 8192, 4
    max_shc = int(np.fix((parameters["f0_max"] + parameters["shc_pwidth"] * 2) / delta))
    min_shc = int(np.ceil(parameters["f0_min"] / delta))
    lags = _shc_lag_range(delta, max_shc, parameters)
    assert lags is not None
    rng = np.random.default_rng(3)
    rows = max_shc - min_shc + 1
    bumps = lambda centres, heights: sum(h * np.exp(-0.5 * ((np.arange(rows) - c) / 4.0) ** 2)
                                         for c, h in zip(centres, heights))
    cases = [
        np.ones(rows),  # flat: the mean is above 1 / thresh1
        0.01 * rng.random(rows),  # noise only
        bumps([150], [1.0]) + 1e-3 * rng.random(rows),
        bumps([100, 320], [1.0, 0.7]) + 1e-3 * rng.random(rows),
        bumps([90, 250, 420], [0.5, 1.0, 0.8]) + 1e-3 * rng.random(rows),
        bumps([80, 170, 260, 350, 440], [1, 0.9, 0.8, 0.7, 0.6]) + 1e-3 * rng.random(rows),
        np.zeros(rows),
        1e-16 * bumps([150], [1.0]),
        bumps([100, 350], [1.0, 1.0]),  # tied merits keep their order
        bumps([120, 300, 480], [0.6, 1.0, 0.6]),
    ]
    sums = np.stack(cases)
    frames = np.arange(len(cases)) * 2  # every other column, as the voiced frames of a clip
    got_pitch, got_merit = np.full((maxpeaks, 2 * len(cases)), -1.0), np.full((maxpeaks, 2 * len(cases)), -1.0)
    shc_peaks(sums, min_shc, max_shc, lags, delta, maxpeaks, parameters, frames, got_pitch, got_merit)
    answers = set()
    for row, frame in enumerate(frames):
        shc = np.zeros(max_shc)
        shc[min_shc - 1:max_shc] = sums[row]
        with np.errstate(invalid="ignore"):  # the zero row: the library divides 0 by a 0 mean
            want_pitch, want_merit = pYAAPT.peaks(shc, delta, maxpeaks, parameters)
        np.testing.assert_array_equal(got_pitch[:, frame], want_pitch, err_msg=f"case {row}")
        np.testing.assert_array_equal(got_merit[:, frame], want_merit, err_msg=f"case {row}")
        answers.add(int(np.count_nonzero(np.unique(want_pitch))))
    assert (got_pitch[:, 1::2] == -1).all()  # columns of other frames untouched
    assert answers >= {0, 1, 2, 3}
