"""Audio I/O: any file soundfile reads -> mono float32 at the rate you ask for.

* :func:`load_audio` reads any sample rate, channel count or bit depth, down-mixes to mono (channel mean),
  resamples with soxr (``HQ``) and checks the result.  Every failure is an :class:`AudioError` whose one-line
  message names the file: missing, empty, unreadable/corrupt, NaN/inf samples, or shorter than asked.
* :func:`save_audio` writes atomically (:func:`utils.io.atomic_path`), so a crash never leaves a half-written
  wav under the final name.
* :func:`peak_normalize` / :func:`rms_normalize` are the two level helpers the recipes use.

Samples are kept in [-1, 1] float; integer PCM is scaled by soundfile (PCM16 -> x / 32768, as the official
HierSpeech++ and VITS loaders do).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf
import soxr

from utils.io import atomic_path

PathLike = Union[str, os.PathLike]


class AudioError(ValueError):
    """An audio file is missing, empty, corrupt, non-finite or too short; the message names the file."""


def audio_info(path: PathLike) -> sf._SoundFileInfo:
    """soundfile's header info (samplerate, channels, frames, subtype) or an :class:`AudioError`."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(f"{path}: cannot read audio header (corrupt or unsupported format): {err}") from err


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono ``(T,)`` or multi-channel ``(T, C)`` float array with soxr HQ; no-op when rates match."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(
    path: PathLike,
    target_sr: Optional[int],
    mono: bool = True,
    min_duration: float = 0.0,
) -> np.ndarray:
    """Read an audio file as float32 at ``target_sr``.

    Args:
        path: any file libsndfile reads (wav, flac, ogg, ...), any rate, channels or bit depth.
        target_sr: output sample rate; ``None`` keeps the file's rate.
        mono: average the channels -> ``(T,)``; otherwise ``(C, T)``.
        min_duration: seconds; shorter audio raises :class:`AudioError`.

    Returns:
        ``(T,)`` (mono) or ``(C, T)`` float32 array.
    """
    path = Path(path)
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(f"{path}: cannot decode audio (corrupt file?): {err}") from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(f"{path}: audio contains {bad} NaN/inf samples")
    if mono:
        data = data.mean(axis=1, dtype=np.float32)
    if target_sr is not None:
        data = resample(data, sr, target_sr)
    out_sr = sr if target_sr is None else target_sr
    data = np.ascontiguousarray(data if mono else data.T, dtype=np.float32)
    duration = data.shape[-1] / out_sr
    if duration < min_duration:
        raise AudioError(f"{path}: audio too short ({duration:.3f} s < {min_duration:.3f} s)")
    return data


def save_audio(path: PathLike, wav: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``wav`` (``(T,)`` or ``(C, T)`` float in [-1, 1], or a torch tensor) atomically.

    Samples outside [-1, 1] are clipped for integer subtypes (soundfile would wrap them otherwise).
    """
    path = Path(path)
    if hasattr(wav, "detach"):  # torch tensor, without importing torch here
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.T  # soundfile wants (T, C)
    elif wav.ndim != 1:
        raise ValueError(f"{path}: save_audio expects (T,) or (C, T), got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: refusing to write audio with NaN/inf samples")
    if subtype.startswith("PCM"):
        wav = np.clip(wav, -1.0, 1.0)
    fmt = (path.suffix or ".wav").lstrip(".").upper()
    with atomic_path(path, suffix=path.suffix or ".wav") as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype=subtype, format=fmt)
    return path


def peak_normalize(wav: np.ndarray, peak: float = 0.95, eps: float = 1e-8) -> np.ndarray:
    """Scale so that max |x| == ``peak``; silence is returned unchanged."""
    top = float(np.max(np.abs(wav))) if wav.size else 0.0
    if top < eps:
        return wav
    return (wav * (peak / top)).astype(np.float32, copy=False)


def rms_normalize(wav: np.ndarray, target_dbfs: float = -20.0, max_peak: float = 0.99, eps: float = 1e-8) -> np.ndarray:
    """Scale to an RMS level of ``target_dbfs`` dB full scale, then limit the peak to ``max_peak``."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms < eps:
        return wav
    out = wav * (10.0 ** (target_dbfs / 20.0) / rms)
    top = float(np.max(np.abs(out)))
    if top > max_peak:
        out = out * (max_peak / top)
    return out.astype(np.float32, copy=False)
