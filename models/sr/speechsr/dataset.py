"""Paired (16 kHz input, target-rate output) waveform crops for SpeechSR training."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import torch

from models.sr.speechsr.model import INPUT_RATE
from processors.audio import load_audio, resample
from processors.data.manifest_dataset import ManifestDataset


class SuperResolutionDataset(ManifestDataset):
    """Item = (x16 (1, segment * 16000 / rate), y (1, segment)) aligned crops of one clip.

    The target is the clip at ``target_rate`` (resampled from the file's rate), the input its 16 kHz
    version resampled from the target (soxr, as a band-limited low-resolution copy). Crop starts are
    multiples of the smallest aligned step and depend only on (seed, epoch, index); ``random_crop=False``
    takes the centre (validation). Short clips are zero-padded.

    Args:
        manifest: JSONL manifest (id, path, ...).
        target_rate: 24000 or 48000.
        segment: target-rate samples per crop (official 9600); must map to an integer number of 16 kHz samples.
    """

    def __init__(self, manifest: str, target_rate: int, segment: int, seed: int, random_crop: bool = True):
        super().__init__(manifest)
        if not self.entries:
            raise ValueError(f"manifest {manifest} has no items")
        self.target_rate = target_rate
        # smallest crop-start step (target samples) that is also an integer number of 16 kHz samples
        g = math.gcd(INPUT_RATE, target_rate)
        self.step_in, self.step_out = INPUT_RATE // g, target_rate // g
        if segment % self.step_out != 0:
            raise ValueError(f"segment {segment} must be a multiple of {self.step_out} at {target_rate} Hz")
        self.segment = segment
        self.segment_in = segment // self.step_out * self.step_in
        self.seed = seed
        self.random_crop = random_crop
        self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    def _pair(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        if index not in self._cache:
            target = load_audio(self.entries[index].path, self.target_rate)
            low = resample(target, self.target_rate, INPUT_RATE)
            n_steps = min(len(low) // self.step_in, len(target) // self.step_out)
            self._cache[index] = (low[: n_steps * self.step_in], target[: n_steps * self.step_out])
        return self._cache[index]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        low, target = self._pair(index)
        n_steps = len(target) // self.step_out
        seg_steps = self.segment // self.step_out
        span = max(0, n_steps - seg_steps)
        if self.random_crop:
            start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(0, span + 1))
        else:
            start = span // 2
        x = low[start * self.step_in: start * self.step_in + self.segment_in]
        y = target[start * self.step_out: start * self.step_out + self.segment]
        x = np.pad(x, (0, self.segment_in - len(x)))
        y = np.pad(y, (0, self.segment - len(y)))
        return torch.from_numpy(x.copy()).unsqueeze(0), torch.from_numpy(y.copy()).unsqueeze(0)


def collate_pairs(items: List[Tuple[torch.Tensor, torch.Tensor]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, segment_in), (B, 1, segment)."""
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])
