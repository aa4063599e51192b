"""Spectral distances between generated and reference audio: MCD, log-mel L1, multi-resolution STFT, STOI, PESQ.

Both signals are compared at a common rate: ``min(generated rate, reference rate)`` unless ``sample_rate``
is given (a 48 kHz SpeechSR output is scored against a 16 kHz reference at 16 kHz).  When the rates differ,
the signal that is already at the comparison rate is resampled up to the other rate and back, so both carry
the same anti-aliasing band limit (the log-envelope of a band removed near Nyquist would otherwise dominate).

**MCD** (dB), mel-cepstra from :mod:`evaluation.mel_cepstrum` (WORLD envelope, 5 ms frames, order/α by rate),
aligned by DTW on c1..cM (or trimmed), averaged over the path::

    MCD = mean over aligned pairs (i, j) of  (10 / ln 10) · sqrt(2 · Σ_{m=1}^{M} (c̃_gen,i(m) - c̃_ref,j(m))²)

c0 (frame energy) is excluded, so loudness differences do not count.  No length-ratio penalty.
Identical audio gives exactly 0; a silent output is analysed as silence (a flat, near-zero envelope) and
scores far above any speech-vs-speech distance (about 13 dB against VCTK speech, versus 6-8 dB between
different speakers).  An empty output is analysed as silence as long as the reference; an output shorter than
0.2 s is padded with silence to 0.2 s (every metric here).

**log-mel L1**: mean |ln mel_gen - ln mel_ref| over aligned frames and 80 mel bins (VITS/HiFi-GAN log-mel,
n_fft 1024, hop 256, floor 1e-5, from :class:`processors.spectrogram.VitsMelSpectrogram`), DTW on the log-mel
frames (or trim).  Silence sits at the floor, far from speech.

**MR-STFT**: for resolutions (n_fft, hop, win) = (512, 128, 512), (1024, 256, 1024), (2048, 512, 2048), with
magnitudes S: spectral convergence ||S_ref - S_gen||_F / ||S_ref||_F plus mean |ln S_ref - ln S_gen|
(floor 1e-5), averaged over resolutions.  Waveforms are trimmed to the shorter length: meaningful where timing
is shared (resynthesis, vocoders, VC), only indicative for TTS.

**LSD** (log-spectral distance, the super-resolution literature's measure): per STFT frame (n_fft 2048, hop
512, Hann) the RMS over frequency bins, optionally only those at or above ``min_hz``, of log10 power differences,
averaged over frames (:func:`log_spectral_distance`; a function for paired signals of one rate, not a metric).

**STOI** (``pystoi``) and **PESQ** (``pesq``, wide-band P.862.2 at 16 kHz) are optional extras on trimmed
waveforms; their packages are imported only when those metrics are requested.
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Tuple

import numpy as np
import torch

from evaluation.alignment import align
from evaluation.base import EvalItem, Metric, Row, at_rate, pad_short, silence_like
from evaluation.mel_cepstrum import mcep_params, world_mcep
from processors.spectrogram import Spectrogram, VitsMelSpectrogram
from utils.registry import register

logger = logging.getLogger(__name__)

MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)
MRSTFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
LOG_MEL_HOP = 256  # VitsMelSpectrogram's default hop: the log-mel frame step in samples


def common_pair(item: EvalItem, sample_rate: Optional[int]) -> Tuple[np.ndarray, np.ndarray, int]:
    """(generated, reference, rate) at the comparison rate; an empty output becomes silence."""
    gen_sr, ref_sr = item.generated_sr, int(item.reference_sr)  # type: ignore[arg-type]
    rate = sample_rate or min(gen_sr, ref_sr)
    ref, gen = item.reference, item.generated
    if gen_sr != ref_sr and rate in (gen_sr, ref_sr):
        # the signal already at the comparison rate goes up to the other rate and back, so that both pass the
        # same anti-aliasing filter: otherwise the band the resampler removes near Nyquist (log-envelope
        # floor) alone adds ~4 dB of MCD
        higher = max(gen_sr, ref_sr)
        if ref_sr == rate:
            ref = at_rate(at_rate(ref, ref_sr, higher), higher, ref_sr)  # type: ignore[arg-type]
        else:
            gen = at_rate(at_rate(gen, gen_sr, higher), higher, gen_sr)
    ref = at_rate(ref, ref_sr, rate)  # type: ignore[arg-type]
    gen = at_rate(gen, gen_sr, rate)
    gen = silence_like(ref) if gen.size == 0 else pad_short(gen, rate)
    return gen, ref, int(rate)


def mel_cepstral_distortion(gen_mcep: np.ndarray, ref_mcep: np.ndarray, alignment: str = "dtw") -> float:
    """MCD in dB between mel-cepstra ``(N, M+1)`` and ``(K, M+1)``, c0 excluded (formula in module doc)."""
    path = align(gen_mcep[:, 1:], ref_mcep[:, 1:], alignment)
    diff = gen_mcep[path[:, 0], 1:] - ref_mcep[path[:, 1], 1:]
    return float(MCD_SCALE * np.mean(np.sqrt(np.sum(diff**2, axis=1))))


@register("metric", "mcd")
class MelCepstralDistortion(Metric):
    """MCD (dB) with DTW on mel-cepstra; order/α by sample rate."""

    name = "mcd"
    columns = {"mcd": False}
    needs = ("reference",)

    def __init__(self, align: str = "dtw", sample_rate: Optional[int] = None, frame_period_ms: float = 5.0) -> None:
        self.alignment = align
        self.sample_rate = sample_rate
        self.frame_period_ms = frame_period_ms

    def score_one(self, item: EvalItem) -> Row:
        gen, ref, rate = common_pair(item, self.sample_rate)
        mcep_params(rate)  # fail early with a clear message for an unsupported rate
        gen_mcep = world_mcep(gen, rate, self.frame_period_ms)
        ref_mcep = world_mcep(ref, rate, self.frame_period_ms)
        return {"mcd": mel_cepstral_distortion(gen_mcep, ref_mcep, self.alignment)}


def log_mel(wav: np.ndarray, sample_rate: int, extractor: Optional[VitsMelSpectrogram] = None) -> np.ndarray:
    """Log-mel frames ``(frames, 80)`` (VITS/HiFi-GAN convention, n_fft 1024, hop 256)."""
    extractor = extractor or VitsMelSpectrogram(sample_rate=sample_rate, hop_length=LOG_MEL_HOP)
    with torch.inference_mode():
        mel = extractor(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])  # (1, 80, frames)
    return mel[0].T.numpy().astype(np.float64)


@register("metric", "log_mel_l1")
class LogMelL1(Metric):
    """Mean absolute log-mel difference over aligned frames."""

    name = "log_mel_l1"
    columns = {"log_mel_l1": False}
    needs = ("reference",)

    def __init__(self, align: str = "dtw", sample_rate: Optional[int] = None) -> None:
        self.alignment = align
        self.sample_rate = sample_rate
        self._extractors: dict = {}

    def score_one(self, item: EvalItem) -> Row:
        gen, ref, rate = common_pair(item, self.sample_rate)
        if rate not in self._extractors:
            self._extractors[rate] = VitsMelSpectrogram(sample_rate=rate, hop_length=LOG_MEL_HOP)
        g, r = log_mel(gen, rate, self._extractors[rate]), log_mel(ref, rate, self._extractors[rate])
        path = align(g, r, self.alignment)
        return {"log_mel_l1": float(np.mean(np.abs(g[path[:, 0]] - r[path[:, 1]])))}


def stft_magnitude(wav: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """``(T,)`` -> magnitude ``(n_fft // 2 + 1, frames)`` (Hann window, centred, reflect-padded), floor 1e-5."""
    return Spectrogram(n_fft, hop, win, power=1.0)(wav)[0].clamp_min(1e-5)


def multi_resolution_stft(gen: np.ndarray, ref: np.ndarray) -> float:
    """Spectral convergence + log-magnitude L1, averaged over :data:`MRSTFT_RESOLUTIONS` (trimmed waveforms)."""
    length = min(len(gen), len(ref))
    g = torch.from_numpy(np.asarray(gen[:length], dtype=np.float64))
    r = torch.from_numpy(np.asarray(ref[:length], dtype=np.float64))
    total = 0.0
    for n_fft, hop, win in MRSTFT_RESOLUTIONS:
        sg, sr = stft_magnitude(g, n_fft, hop, win), stft_magnitude(r, n_fft, hop, win)
        convergence = torch.linalg.norm(sr - sg) / torch.linalg.norm(sr)
        log_l1 = torch.mean(torch.abs(torch.log(sr) - torch.log(sg)))
        total += float(convergence + log_l1)
    return total / len(MRSTFT_RESOLUTIONS)


def log_spectral_distance(gen: np.ndarray, ref: np.ndarray, sample_rate: int, min_hz: float = 0.0,
                          n_fft: int = 2048, hop: int = 512) -> float:
    """LSD of two waveforms ``(T,)`` at ``sample_rate``, trimmed to the shorter: mean over frames of
    sqrt(mean over bins >= ``min_hz`` of (log10 |S_ref|² - log10 |S_gen|²)²), magnitudes floored at 1e-5.
    0 for identical audio; a gain of g on every bin gives |log10 g²|."""
    length = min(len(gen), len(ref))
    g = torch.from_numpy(np.asarray(gen[:length], dtype=np.float64))
    r = torch.from_numpy(np.asarray(ref[:length], dtype=np.float64))
    bins = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate) >= min_hz
    diff = 2.0 * (torch.log10(stft_magnitude(r, n_fft, hop, n_fft)) - torch.log10(stft_magnitude(g, n_fft, hop, n_fft)))
    return float(torch.sqrt(torch.mean(diff[bins] ** 2, dim=0)).mean())


def frame_rate_lines_db(wav: np.ndarray, sample_rate: int, hop: float, harmonics: int = 4,
                        n_fft: int = 32768) -> float:
    """How far a vocoder's frame rate ``sample_rate / hop`` and its first ``harmonics`` multiples stand out of the
    long-term spectrum of ``wav (T,)``: the mean over them of the peak power within one bin of the line over the
    median power within ±40 Hz, in dB (Welch average of Hann frames of ``n_fft``, half the frame apart).

    A decoder that repeats its upsampling kernel once per latent frame buzzes at exactly these frequencies (86 Hz
    at 22.05 kHz, hop 256): long frames (1.5 s at 22.05 kHz, 0.7 Hz bins) keep such a line in one bin while
    speech harmonics, which glide, spread. Measured (issue 46): recordings 1-4 dB, the joe voice 2-4 dB,
    fine-tuned voices with the buzz audible 6-14 dB."""
    x = np.asarray(wav, dtype=np.float64)
    n_fft = int(min(n_fft, 2 ** int(np.floor(np.log2(max(len(x), 256))))))
    x = np.pad(x, (0, max(0, n_fft - len(x))))
    step = n_fft // 2
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::step] * np.hanning(n_fft)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, axis=0) + 1e-20
    bin_hz = sample_rate / n_fft
    around = max(2, int(round(40.0 / bin_hz)))
    lines = []
    for k in range(1, harmonics + 1):
        centre = int(round(k * sample_rate / hop / bin_hz))
        peak = power[max(centre - 1, 0): centre + 2].max()
        lines.append(10.0 * np.log10(peak / np.median(power[max(centre - around, 0): centre + around + 1])))
    return float(np.mean(lines))


@register("metric", "mrstft")
class MultiResolutionSTFT(Metric):
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1)."""

    name = "mrstft"
    columns = {"mrstft": False}
    needs = ("reference",)

    def __init__(self, sample_rate: Optional[int] = None) -> None:
        self.sample_rate = sample_rate

    def score_one(self, item: EvalItem) -> Row:
        gen, ref, _ = common_pair(item, self.sample_rate)
        return {"mrstft": multi_resolution_stft(gen, ref)}


@register("metric", "stoi")
class ShortTimeIntelligibility(Metric):
    """STOI (optional extra: ``pip install pystoi``), trimmed waveforms at the common rate."""

    name = "stoi"
    columns = {"stoi": True}
    needs = ("reference",)

    def __init__(self, extended: bool = False, sample_rate: Optional[int] = None) -> None:
        try:
            from pystoi import stoi
        except ImportError as err:
            raise ImportError("the stoi metric needs the optional package pystoi (pip install pystoi)") from err
        self._stoi = stoi
        self.extended = extended
        self.sample_rate = sample_rate

    def score_one(self, item: EvalItem) -> Row:
        gen, ref, rate = common_pair(item, self.sample_rate)
        length = min(len(gen), len(ref))
        value = float(self._stoi(ref[:length], gen[:length], rate, extended=self.extended))
        return {"stoi": value if np.isfinite(value) else 0.0}  # silent output: no intelligibility


@register("metric", "pesq")
class WidebandPESQ(Metric):
    """Wide-band PESQ at 16 kHz (optional extra: ``pip install pesq``, builds a C extension)."""

    name = "pesq"
    columns = {"pesq": True}
    needs = ("reference",)
    PESQ_RATE = 16000
    SILENT_SCORE = 1.0  # bottom of the MOS-LQO scale; the PESQ library itself fails (NaN) on a silent output

    def __init__(self) -> None:
        try:
            from pesq import NoUtterancesError, pesq
        except ImportError as err:
            raise ImportError("the pesq metric needs the optional package pesq (pip install pesq)") from err
        self._pesq = pesq
        self._no_speech = NoUtterancesError

    def score_one(self, item: EvalItem) -> Row:
        if item.generated_is_silent:
            return {"pesq": self.SILENT_SCORE}
        gen, ref, _ = common_pair(item, self.PESQ_RATE)
        length = min(len(gen), len(ref))
        try:
            return {"pesq": float(self._pesq(self.PESQ_RATE, ref[:length], gen[:length], "wb"))}
        except self._no_speech:
            logger.warning("PESQ found no utterance in the reference of %s; skipped", item.utt_id)
            return {"pesq": math.nan}
