"""MCD, mel-cepstral analysis, log-mel L1, MR-STFT, LSD and the optional STOI/PESQ on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.base import EvalItem, read_audio
from evaluation.mel_cepstrum import envelope_to_mcep, mcep_params, warp_frequencies
from evaluation.spectral import LogMelL1, MelCepstralDistortion, MultiResolutionSTFT, log_spectral_distance
from processors.audio import resample


@pytest.fixture(scope="module")
def vctk_pair(vctk_clips):
    """Two speakers' clips (same sentence number) and a second clip of the first speaker."""
    speakers = sorted(vctk_clips)
    a, sr = read_audio(vctk_clips[speakers[0]][0])
    b, _ = read_audio(vctk_clips[speakers[1]][0])
    return a, b, sr


def test_mcd_identical_is_zero_other_speaker_positive_silence_large(vctk_pair) -> None:
    a, b, sr = vctk_pair
    rows = MelCepstralDistortion().score([
        EvalItem("same", a, sr, a, sr),
        EvalItem("other", b, sr, a, sr),
        EvalItem("silent", np.zeros_like(a), sr, a, sr),
        EvalItem("empty", np.zeros(0, dtype=np.float32), sr, a, sr),
    ])
    same, other, silent, empty = (r["mcd"] for r in rows)
    print(f"MCD same {same} other {other:.2f} silent {silent:.2f}")
    assert same == 0.0
    assert 3.0 < other < silent and silent == pytest.approx(empty, rel=0.05)


def test_mcd_is_scale_invariant_and_rate_aware(lj_clip) -> None:
    wav, sr = lj_clip  # 22.05 kHz: order 34, alpha 0.45
    assert mcep_params(sr) == (34, 0.45)
    quieter = MelCepstralDistortion().score([EvalItem("gain", 0.3 * wav, sr, wav, sr)])[0]["mcd"]
    assert quieter < 0.05  # c0 (energy) is excluded
    with pytest.raises(ValueError, match="no mel-cepstrum order/alpha for 11025 Hz"):
        mcep_params(11025)


def test_mel_cepstrum_reconstructs_the_envelope() -> None:
    """ln|H| = sum_m c(m) cos(m * warp(w)) must give back a smooth envelope."""
    n_bins, alpha, order = 513, 0.42, 40
    omega = np.linspace(0.0, np.pi, n_bins)
    # a smooth two-formant log-amplitude envelope
    log_amp = 1.5 * np.exp(-((omega - 0.4) ** 2) / 0.02) + np.exp(-((omega - 1.3) ** 2) / 0.05) - 0.5 * omega
    mcep = envelope_to_mcep(np.exp(2.0 * log_amp)[None], order, alpha)[0]
    rebuilt = np.cos(np.outer(warp_frequencies(omega, alpha), np.arange(order + 1))) @ mcep
    assert np.max(np.abs(rebuilt - log_amp)) < 0.05
    plain = envelope_to_mcep(np.exp(2.0 * log_amp)[None], order, 0.0)[0]
    assert plain[0] == pytest.approx(np.mean(np.fft.irfft(log_amp)[:1]))  # alpha 0: ordinary cepstrum


def test_log_mel_and_mrstft(vctk_pair) -> None:
    a, b, sr = vctk_pair
    items = [EvalItem("same", a, sr, a, sr), EvalItem("other", b, sr, a, sr), EvalItem("silent", np.zeros_like(a), sr, a, sr)]
    mel = [r["log_mel_l1"] for r in LogMelL1().score(items)]
    stft = [r["mrstft"] for r in MultiResolutionSTFT().score(items)]
    assert mel[0] == 0.0 and 0.0 < mel[1] < mel[2]
    assert stft[0] == 0.0 and 0.0 < stft[1] < stft[2]


def test_log_spectral_distance_gain_band_and_other_speaker(vctk_pair) -> None:
    a, b, sr = vctk_pair
    assert log_spectral_distance(a, a, sr) == 0.0
    # a gain g moves every bin above the floor by log10(g²): 0.5 -> 0.602 (silent frames sit at the floor)
    assert 0.45 < log_spectral_distance(0.5 * a, a, sr) <= 2 * np.log10(2.0) + 1e-9
    # a copy low-passed at 4 kHz differs (nearly) only above it: the full-band LSD is the upper band's scaled by
    # the square root of that band's share of the bins (measured 1.09x that: the resampler's transition band)
    low = resample(resample(a, sr, 8000), 8000, sr)[: a.size]
    high, full = log_spectral_distance(low, a, sr, min_hz=4500), log_spectral_distance(low, a, sr)
    share = np.mean(np.fft.rfftfreq(2048, 1.0 / sr) >= 4500)
    assert high > 3.0 and high * np.sqrt(share) <= full < 1.15 * high * np.sqrt(share)
    # another speaker differs everywhere, but less than a missing band (floored at 1e-5) does
    assert 1.0 < log_spectral_distance(b, a, sr) < full


def test_mismatched_rates_are_compared_at_the_lower_rate(vctk_pair) -> None:
    import soxr

    a, _, sr = vctk_pair
    upsampled = soxr.resample(a, sr, 48000)
    row = MelCepstralDistortion().score([EvalItem("sr", upsampled, 48000, a, sr)])[0]
    assert row["mcd"] < 0.5  # same audio at another rate


def test_optional_stoi_and_pesq(vctk_pair) -> None:
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    from evaluation.spectral import ShortTimeIntelligibility, WidebandPESQ

    a, b, sr = vctk_pair
    items = [EvalItem("same", a, sr, a, sr), EvalItem("silent", np.zeros_like(a), sr, a, sr)]
    stoi = [r["stoi"] for r in ShortTimeIntelligibility().score(items)]
    pesq = [r["pesq"] for r in WidebandPESQ().score(items)]
    assert stoi[0] == pytest.approx(1.0, abs=1e-6) and stoi[1] < 0.1
    assert pesq[0] > 4.4 and pesq[1] == WidebandPESQ.SILENT_SCORE


def test_very_short_output_is_scored_not_crashing(vctk_pair) -> None:
    a, b, sr = vctk_pair
    blip = (0.3 * np.sin(np.arange(50) / 3.0)).astype(np.float32)  # 3 ms: shorter than one analysis frame
    items = [EvalItem("blip", blip, sr, a, sr), EvalItem("other", b, sr, a, sr)]
    mcd = [r["mcd"] for r in MelCepstralDistortion().score(items)]
    mel = [r["log_mel_l1"] for r in LogMelL1().score(items)]
    stft = [r["mrstft"] for r in MultiResolutionSTFT().score(items)]
    assert mcd[0] > mcd[1] and mel[0] > mel[1] and stft[0] > stft[1]


def test_frame_rate_lines_stand_out_only_when_the_frame_rate_buzzes(lj_clip) -> None:
    from evaluation.spectral import frame_rate_lines_db

    wav, rate = lj_clip
    t = np.arange(len(wav)) / rate
    speech = frame_rate_lines_db(wav, rate, hop=256)
    # a pulse train at the frame rate (what a kernel repeated once per frame adds), 20 dB under the speech
    pulses = np.zeros_like(wav)
    pulses[::256] = 1.0
    buzz = pulses * np.sqrt(np.mean(wav ** 2) / np.mean(pulses ** 2)) * 0.1
    buzzing = frame_rate_lines_db(wav + buzz, rate, hop=256)
    # the same pulses at another rate leave the frame-rate lines alone
    other = np.zeros_like(wav)
    other[::301] = buzz.max()
    assert speech < 4.0 and buzzing > speech + 6.0, (speech, buzzing)
    assert abs(frame_rate_lines_db(wav + other, rate, hop=256) - speech) < 2.0
    assert frame_rate_lines_db(np.sin(2 * np.pi * rate / 256 * t) * 0.01 + wav, rate, hop=256) > speech + 6.0
    assert np.isfinite(frame_rate_lines_db(wav[:300], rate, hop=256))  # shorter than one frame: still a number
