"""Signal-processing features (per item, in worker processes): HierSpeech++ log-mel, linear spectrogram, log-F0.

For an utterance of N samples at ``sample_rate`` with hop H, T = N // H:

* ``mel``    ``(n_mels, T)``          HierSpeech++ log-mel (:class:`processors.spectrogram.HierSpeechLogMel`)
* ``linear`` ``(n_fft // 2 + 1, T)``  HierSpeech++ linear magnitude (641 bins at n_fft 1280)
* ``f0``     ``(4T,)``                ln(F0 + 1) at 5 ms steps (200 Hz at the default 16 kHz / hop 320), unvoiced 0;
  YAAPT with the official settings, or pyworld dio/harvest.  An all-unvoiced item is bad (the official
  ``prepare_filelist`` drops it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from processors.f0 import F0_MAX_VC, align_f0_length, extract_f0, to_log_f0
from processors.features.base import FeatureExtractor
from utils.registry import register

F0_STEPS_PER_FRAME = 4  # 5 ms F0 steps per 20 ms (hop 320 at 16 kHz) latent frame


@dataclass(frozen=True)
class LinearSettings:
    sample_rate: int = 16000
    n_fft: int = 1280
    win_length: int = 1280
    hop_length: int = 320


@dataclass(frozen=True)
class MelSettings(LinearSettings):
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0


@dataclass(frozen=True)
class F0Settings:
    sample_rate: int = 16000
    hop_length: int = 320
    method: str = "yaapt"
    f0_max: float = F0_MAX_VC


class _SpectrogramFeature(FeatureExtractor):
    """Builds its torch front end lazily (after unpickling in a worker) and runs it without autograd."""

    def _build(self) -> torch.nn.Module:
        raise NotImplementedError

    def extract(self, wav: np.ndarray) -> torch.Tensor:
        if getattr(self, "_front_end", None) is None:
            self._front_end = self._build()
        with torch.no_grad():
            return self._front_end(torch.from_numpy(wav).unsqueeze(0))[0]

    def __getstate__(self):  # ship settings, not the built module, to worker processes
        return {**self.__dict__, "_front_end": None}


@register("feature", "mel")
class MelFeature(_SpectrogramFeature):
    """HierSpeech++ log-mel ``(n_mels, N // hop_length)``."""

    Settings = MelSettings

    def _build(self) -> torch.nn.Module:
        from processors.spectrogram import HierSpeechLogMel

        s = self.settings
        return HierSpeechLogMel(sample_rate=s.sample_rate, n_fft=s.n_fft, win_length=s.win_length,
                                hop_length=s.hop_length, f_min=s.f_min, f_max=s.f_max, n_mels=s.n_mels)


@register("feature", "linear")
class LinearFeature(_SpectrogramFeature):
    """HierSpeech++ linear magnitude spectrogram ``(n_fft // 2 + 1, N // hop_length)``."""

    Settings = LinearSettings

    def _build(self) -> torch.nn.Module:
        from processors.spectrogram import HierSpeechLinearSpectrogram

        s = self.settings
        return HierSpeechLinearSpectrogram(n_fft=s.n_fft, win_length=s.win_length, hop_length=s.hop_length)


@register("feature", "f0")
class F0Feature(FeatureExtractor):
    """ln(F0 + 1) ``(4 * (N // hop_length),)``, unvoiced 0; an item with no voiced step raises ValueError."""

    Settings = F0Settings

    @classmethod
    def frame_shift_of(cls, description) -> Optional[float]:
        hop_seconds = super().frame_shift_of(description)  # F0 has F0_STEPS_PER_FRAME steps per hop
        return hop_seconds / F0_STEPS_PER_FRAME if hop_seconds else None

    def extract(self, wav: np.ndarray) -> torch.Tensor:
        s = self.settings
        f0_hz = extract_f0(wav, s.sample_rate, s.method, s.f0_max)
        if not np.any(f0_hz > 0):  # training drops all-unvoiced files (official prepare_filelist)
            raise ValueError(f"{s.method} found no voiced frame")
        return align_f0_length(to_log_f0(f0_hz), F0_STEPS_PER_FRAME * (wav.shape[0] // s.hop_length))
