"""NANSY-style perturbation: lengths, seeding, and that each perturbation really does what it claims on real speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import sosfreqz

from processors.perturb import (
    PerturbConfig,
    peaking_sos,
    perturb,
    praat_change_gender,
    random_peq,
    random_ratio,
    shelf_sos,
)
from tests.helpers import MINI_CORPUS

pytest.importorskip("parselmouth")

CLIP = MINI_CORPUS / "vctk" / "p225" / "p225_003.wav"


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    wav, sr = sf.read(CLIP, dtype="float32")
    assert sr == 16000
    return wav[: 3 * sr], sr  # 3 s keeps YAAPT and Praat fast


def _median_f0(wav: np.ndarray, sr: int) -> float:
    import amfm_decompy.basic_tools as basic
    import amfm_decompy.pYAAPT as pyaapt

    signal = basic.SignalObj(wav.astype(np.float64), sr)
    pitch = pyaapt.yaapt(signal, frame_length=20.0, frame_space=5.0, nccf_thresh1=0.25, tda_frame_length=25.0)
    voiced = pitch.samp_values[pitch.samp_values > 0]
    assert voiced.size > 50, "clip should be mostly voiced"
    return float(np.median(voiced))


def _envelope(wav: np.ndarray, n_fft: int = 1024, n_cep: int = 30) -> np.ndarray:
    """Mean cepstrally smoothed log-magnitude spectrum of the louder frames (formant envelope), (n_fft//2+1,)."""
    hop = n_fft // 4
    frames = np.lib.stride_tricks.sliding_window_view(wav, n_fft)[::hop] * np.hanning(n_fft)
    energy = (frames**2).sum(axis=1)
    frames = frames[energy > np.percentile(energy, 50)]
    log_mag = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-6)
    cep = np.fft.irfft(log_mag, axis=1)
    cep[:, n_cep:-n_cep] = 0.0
    return np.fft.rfft(cep, axis=1).real[:, : n_fft // 2 + 1].mean(axis=0)


def _best_warp(reference: np.ndarray, warped: np.ndarray, sr: int) -> float:
    """Frequency-scaling factor a maximising corr(env_warped(f), env_ref(f / a)) over 300-5000 Hz."""
    freqs = np.linspace(0, sr / 2, reference.shape[0])
    band = (freqs > 300) & (freqs < 5000)
    candidates = np.exp(np.linspace(np.log(0.6), np.log(1.6), 101))
    scores = [np.corrcoef(warped[band], np.interp(freqs[band] / a, freqs, reference))[0, 1] for a in candidates]
    return float(candidates[int(np.argmax(scores))])


def test_random_ratio_ranges() -> None:
    rng = np.random.default_rng(0)
    ratios = np.array([random_ratio(rng, 1.4) for _ in range(400)])
    up = ratios[ratios >= 1.0]
    assert np.all((ratios >= 1 / 1.4) & (ratios <= 1.4))
    assert 0.35 < up.size / ratios.size < 0.65  # inverted about half the time
    with pytest.raises(ValueError, match="max_ratio"):
        random_ratio(rng, 0.5)


def test_biquads_have_the_requested_gain() -> None:
    _, h = sosfreqz(peaking_sos(1000.0, -9.0, 2.0, 16000), worN=[1000.0, 30.0], fs=16000)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), [-9.0, 0.0], atol=0.05)
    _, h = sosfreqz(shelf_sos(100.0, 6.0, 0.707, 16000, "low"), worN=[5.0, 6000.0], fs=16000)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), [6.0, 0.0], atol=0.05)
    _, h = sosfreqz(shelf_sos(3000.0, -6.0, 0.707, 16000, "high"), worN=[7990.0, 50.0], fs=16000)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), [-6.0, 0.0], atol=0.05)


def test_perturb_length_dtype_and_seed(speech) -> None:
    wav, sr = speech
    out_a = perturb(wav, sr, np.random.default_rng(7))
    out_b = perturb(wav, sr, np.random.default_rng(7))
    out_c = perturb(wav, sr, np.random.default_rng(8))
    assert out_a.shape == wav.shape and out_a.dtype == np.float32
    np.testing.assert_array_equal(out_a, out_b)
    assert not np.allclose(out_a, out_c)
    assert not np.allclose(out_a, wav, atol=1e-3)
    assert np.isclose(np.abs(out_a).max(), min(np.abs(wav).max(), 0.999), rtol=1e-4)


@pytest.mark.parametrize("ratio", [1.5, 1 / 1.5])
def test_pitch_shift_moves_f0(speech, ratio: float) -> None:
    wav, sr = speech
    shifted = praat_change_gender(wav, sr, formant_shift_ratio=1.0, pitch_shift_ratio=ratio, pitch_range_ratio=1.0)
    assert shifted.shape == wav.shape
    measured = _median_f0(shifted, sr) / _median_f0(wav, sr)
    assert abs(np.log(measured / ratio)) < np.log(1.08), f"asked x{ratio:.3f}, YAAPT median moved x{measured:.3f}"


@pytest.mark.parametrize("ratio", [1.3, 1 / 1.3])
def test_formant_shift_moves_envelope(speech, ratio: float) -> None:
    wav, sr = speech
    shifted = praat_change_gender(wav, sr, formant_shift_ratio=ratio, pitch_shift_ratio=1.0, pitch_range_ratio=1.0)
    warp = _best_warp(_envelope(wav), _envelope(shifted), sr)
    same = _best_warp(_envelope(wav), _envelope(wav), sr)
    assert abs(np.log(same)) < 0.02
    # The envelope moves in the asked direction by a good part of the asked amount.
    assert np.log(warp) / np.log(ratio) > 0.5, f"asked x{ratio:.3f}, envelope moved x{warp:.3f}"


def test_peq_changes_spectrum_not_length_or_level(speech) -> None:
    wav, sr = speech
    config = PerturbConfig(apply_formant_pitch=False)
    out = random_peq(wav, sr, np.random.default_rng(3), config)
    assert out.shape == wav.shape
    diff = np.abs(_envelope(out) - _envelope(wav))
    assert diff.max() > np.log(10 ** (3 / 20)), "a random PEQ should colour the spectrum by more than 3 dB"
    rms_ratio_db = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(wav**2)))
    assert abs(rms_ratio_db) < 12.0
    np.testing.assert_allclose(np.abs(out).max(), np.abs(wav).max(), rtol=1e-6)


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mono"):
        perturb(np.zeros((2, 100), np.float32), 16000, rng)
    with pytest.raises(TypeError, match="Generator"):
        perturb(np.zeros(100, np.float32), 16000, 0)  # type: ignore[arg-type]
