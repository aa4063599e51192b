"""Spectrograms in plain torch (no torchaudio): STFT, linear, HierSpeech++ log-mel, VITS/HiFi-GAN mel.

Two conventions live here, because the two model families were trained on different front ends:

* **HierSpeech++** (``Mels_preprocess.MelSpectrogramFixed`` / ``SpectrogramFixed``, torchaudio 0.13 arithmetic):
  centred STFT with reflect padding of n_fft/2, periodic Hann, *power* spectrogram, HTK mel filterbank without
  area normalisation, ``ln(x + 0.001)``, and the last frame dropped so N samples give N // hop frames.
  :class:`HierSpeechLogMel`, :class:`HierSpeechLinearSpectrogram` (magnitude, 641 bins at n_fft 1280).
* **VITS / HiFi-GAN** (``mel_processing.spectrogram_torch``): manual reflect padding of (n_fft - hop) / 2 then an
  uncentred STFT, magnitude ``sqrt(re² + im² + eps)`` (eps 1e-6 in VITS, 1e-9 in HiFi-GAN), Slaney mel
  filterbank from librosa, ``ln(clamp(x, 1e-5))``.  :class:`VitsLinearSpectrogram`, :class:`VitsMelSpectrogram`;
  :func:`speechsr_mel` gives the SpeechSR loss settings.

The generic STFT module :class:`Spectrogram` lives in :mod:`modules.stft` (the STFT discriminators use it too).
Every class is an ``nn.Module`` whose window and filterbank are buffers, so ``.to(device)`` moves them and the
same object serves CPU and GPU.  ``forward(wav, lengths=None)`` takes ``(B, T)`` or ``(B, 1, T)``; with
``lengths`` each item is padded from *its own* valid samples (exactly as if it were processed alone) and frames
beyond each item's length are zero; output lengths are returned alongside.  Without ``lengths`` the batch
is treated as is (this is what the official training code does with zero-padded batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import librosa
import torch
from torch import Tensor, nn

from modules.stft import Spectrogram, as_batch, pad_each  # noqa: F401  (Spectrogram is re-exported)

__all__ = [
    "MelConfig",
    "Spectrogram",
    "HierSpeechLogMel",
    "HierSpeechLinearSpectrogram",
    "VitsLinearSpectrogram",
    "VitsMelSpectrogram",
    "htk_mel_filterbank",
    "slaney_mel_filterbank",
    "speechsr_mel",
]


# --------------------------------------------------------------------------- config
@dataclass
class MelConfig:
    """The mel front end of a data config, in the official VITS/HiFi-GAN ``data`` names. Every data config with a
    mel front end inherits it (VITS, GAN vocoder, Glow-WaveGAN stage 1, HierSpeech++, each with its defaults), so
    the keys stay flat (``data.hop_length``) and saved configs load unchanged; :meth:`VitsMelSpectrogram.from_config`
    / :meth:`HierSpeechLogMel.from_config` build the extractor from it."""

    sample_rate: int = 22050
    filter_length: int = 1024  # n_fft
    hop_length: int = 256
    win_length: int = 1024
    n_mel_channels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: Optional[float] = None  # None: sample_rate / 2


# --------------------------------------------------------------------------- filterbanks
def _hz_to_mel_htk(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def htk_mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> Tensor:
    """HTK-scale triangular filterbank without normalisation, ``(n_freqs, n_mels)`` float32.

    Same float32 arithmetic as ``torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")``
    (grid, mel points and slopes in float32), which is what HierSpeech++ was trained with.
    """
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel_htk(f_min), _hz_to_mel_htk(f_max), n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: Optional[float]) -> Tensor:
    """librosa's default (Slaney scale, area-normalised) filterbank, ``(n_mels, n_fft // 2 + 1)`` float32."""
    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
    return torch.from_numpy(fb).float()


# --------------------------------------------------------------------------- masking
def _mask_frames(spec: Tensor, frame_lengths: Tensor) -> Tensor:
    """Zero frames ``t >= frame_lengths[b]`` of ``(B, C, T)``."""
    steps = torch.arange(spec.size(-1), device=spec.device)
    return spec * (steps.unsqueeze(0) < frame_lengths.to(spec.device).unsqueeze(1)).unsqueeze(1).to(spec.dtype)


# --------------------------------------------------------------------------- HierSpeech++ convention
class HierSpeechLogMel(nn.Module):
    """HierSpeech++ ``MelSpectrogramFixed``: ``(B, T)`` -> ``(B, n_mels, T // hop)`` log-mel.

    Power spectrogram (centred, reflect, periodic Hann) -> HTK mel (no norm) -> ``ln(x + 0.001)`` -> last
    frame dropped.  The filterbank is the buffer ``mel_fb`` ``(n_fft // 2 + 1, n_mels)``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1280,
        win_length: int = 1280,
        hop_length: int = 320,
        f_min: float = 0.0,
        f_max: float = 8000.0,
        n_mels: int = 80,
        log_offset: float = 0.001,
    ) -> None:
        super().__init__()
        self.hop_length = hop_length
        self.log_offset = log_offset
        self.spectrogram = Spectrogram(n_fft, hop_length, win_length, power=2.0, persistent_window=False)
        fb = htk_mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate)
        self.register_buffer("mel_fb", fb, persistent=False)

    @classmethod
    def from_config(cls, cfg: MelConfig) -> "HierSpeechLogMel":
        f_max = cfg.mel_fmax if cfg.mel_fmax is not None else cfg.sample_rate / 2
        return cls(cfg.sample_rate, cfg.filter_length, cfg.win_length, cfg.hop_length, cfg.mel_fmin, f_max,
                   cfg.n_mel_channels)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return lengths // self.hop_length

    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tensor | Tuple[Tensor, Tensor]:
        """Return the log-mel, or ``(log_mel, frame_lengths)`` when ``lengths`` is given."""
        power = self.spectrogram(wav, lengths)  # (B, F, T + 1)
        mel = torch.matmul(power.transpose(-1, -2), self.mel_fb).transpose(-1, -2)
        log_mel = torch.log(mel + self.log_offset)[..., :-1]
        if lengths is None:
            return log_mel
        frames = self.frame_lengths(lengths)
        return _mask_frames(log_mel, frames), frames


class HierSpeechLinearSpectrogram(nn.Module):
    """HierSpeech++ ``SpectrogramFixed``: magnitude ``(B, n_fft // 2 + 1, T // hop)`` (641 bins at 1280)."""

    def __init__(self, n_fft: int = 1280, win_length: int = 1280, hop_length: int = 320, power: float = 1.0) -> None:
        super().__init__()
        self.hop_length = hop_length
        self.spectrogram = Spectrogram(n_fft, hop_length, win_length, power=power, persistent_window=False)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return lengths // self.hop_length

    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tensor | Tuple[Tensor, Tensor]:
        spec = self.spectrogram(wav, lengths)[..., :-1]
        if lengths is None:
            return spec
        frames = self.frame_lengths(lengths)
        return _mask_frames(spec, frames), frames


# --------------------------------------------------------------------------- VITS / HiFi-GAN convention
class VitsLinearSpectrogram(nn.Module):
    """VITS ``spectrogram_torch``: reflect pad (n_fft - hop) / 2, uncentred STFT, ``sqrt(re² + im² + eps)``.

    ``(B, T)`` -> ``(B, n_fft // 2 + 1, (T + 2p - n_fft) // hop + 1)`` with p = (n_fft - hop) // 2.
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024, eps: float = 1e-6) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.eps = eps
        self.pad = (n_fft - hop_length) // 2
        self.stft = Spectrogram(n_fft, hop_length, win_length, power=None, center=False, persistent_window=False)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return (lengths + 2 * self.pad - self.n_fft) // self.hop_length + 1

    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tensor | Tuple[Tensor, Tensor]:
        spec = self.stft(pad_each(as_batch(wav), lengths, self.pad, self.pad, "reflect"))  # complex, uncentred
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + self.eps)
        if lengths is None:
            return mag
        frames = self.frame_lengths(lengths)
        return _mask_frames(mag, frames), frames


class VitsMelSpectrogram(nn.Module):
    """VITS / HiFi-GAN log-mel: :class:`VitsLinearSpectrogram` -> Slaney mel -> ``ln(clamp(x, clip))``.

    The filterbank is the buffer ``mel_basis`` ``(n_mels, n_fft // 2 + 1)``.  ``f_max=None`` means sr / 2.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: Optional[float] = None,
        eps: float = 1e-6,
        clip: float = 1e-5,
    ) -> None:
        super().__init__()
        self.clip = clip
        self.linear = VitsLinearSpectrogram(n_fft, hop_length, win_length, eps)
        self.register_buffer("mel_basis", slaney_mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max), persistent=False)

    @classmethod
    def from_config(cls, cfg: MelConfig) -> "VitsMelSpectrogram":
        return cls(cfg.sample_rate, cfg.filter_length, cfg.hop_length, cfg.win_length, cfg.n_mel_channels,
                   cfg.mel_fmin, cfg.mel_fmax)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return self.linear.frame_lengths(lengths)

    def spec_to_mel(self, spec: Tensor) -> Tensor:
        """Linear magnitude ``(B, F, T)`` -> log-mel ``(B, n_mels, T)``."""
        return torch.log(torch.clamp(torch.matmul(self.mel_basis, spec), min=self.clip))

    def forward(self, wav: Tensor, lengths: Optional[Tensor] = None) -> Tensor | Tuple[Tensor, Tensor]:
        if lengths is None:
            return self.spec_to_mel(self.linear(wav))
        spec, frames = self.linear(wav, lengths)
        return _mask_frames(self.spec_to_mel(spec), frames), frames


def speechsr_mel(sample_rate: int) -> VitsMelSpectrogram:
    """Mel used by the SpeechSR loss: 24 kHz -> 960/240/100 mels/fmax 12 k; 48 kHz -> 1280/320/128/24 k."""
    settings = {
        24000: dict(n_fft=960, hop_length=240, win_length=960, n_mels=100, f_max=12000.0),
        48000: dict(n_fft=1280, hop_length=320, win_length=1280, n_mels=128, f_max=24000.0),
    }
    if sample_rate not in settings:
        raise ValueError(f"SpeechSR mel settings exist for 24000 and 48000 Hz, not {sample_rate}")
    return VitsMelSpectrogram(sample_rate=sample_rate, f_min=0.0, **settings[sample_rate])
