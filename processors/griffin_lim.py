"""Log-mel -> waveform without a neural vocoder: mel inversion (non-negative least squares) + Griffin-Lim.

For the VITS / HiFi-GAN log-mel (:class:`processors.spectrogram.VitsMelSpectrogram`: Slaney filterbank,
magnitude, natural log) as a model predicts it. Both steps are librosa's
(``librosa.feature.inverse.mel_to_stft`` and ``librosa.griffinlim`` with its momentum, "fast Griffin-Lim").
``power`` > 1 raises the magnitudes before phase recovery: it sharpens the blurred spectra a regression model
predicts (less buzz, the classic Tacotron trick). Quality is well below a neural vocoder's but needs no training,
so a new acoustic model can be heard (and scored by an ASR) the moment it trains.
"""

from __future__ import annotations

from typing import Optional

import librosa
import numpy as np
import torch


def griffin_lim(log_mel: torch.Tensor | np.ndarray, sample_rate: int, n_fft: int, hop_length: int,
                win_length: int, f_min: float = 0.0, f_max: Optional[float] = None, n_iter: int = 60,
                power: float = 1.0, seed: int = 0) -> np.ndarray:
    """``log_mel (n_mels, T)`` -> float32 waveform ``(T * hop_length,)`` (the VITS mel's frame count)."""
    mel = np.exp(np.asarray(log_mel.detach().cpu() if isinstance(log_mel, torch.Tensor) else log_mel, np.float64))
    if mel.ndim != 2 or mel.shape[1] == 0:
        raise ValueError(f"griffin_lim: expected a (n_mels, frames) log-mel with frames > 0, got {mel.shape}")
    magnitude = librosa.feature.inverse.mel_to_stft(mel, sr=sample_rate, n_fft=n_fft, power=1.0, fmin=f_min,
                                                    fmax=f_max) ** power
    # librosa's centred frames give (T - 1) * hop samples; padded to the VITS mel's T * hop
    wav = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, win_length=win_length,
                             random_state=np.random.default_rng(seed), init="random")
    wav = np.pad(wav, (0, mel.shape[1] * hop_length - wav.shape[0]))
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return (wav / peak * 0.9 if peak > 0.9 else wav).astype(np.float32)
