"""Random fixed-length waveform crops from a JSONL manifest (processors.data.manifest format)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from processors.audio import load_audio
from processors.data.manifest_dataset import ManifestDataset


class WaveCropDataset(ManifestDataset):
    """Item = (1, segment) float32 crop; the crop start depends only on (seed, epoch, index)."""

    def __init__(self, manifest: str | Path, sample_rate: int, segment: int, seed: int, random_crop: bool):
        super().__init__(manifest)
        self.sample_rate = sample_rate
        self.segment = segment
        self.seed = seed
        self.random_crop = random_crop
        self._cache: Dict[int, np.ndarray] = {}

    def __getitem__(self, index: int) -> torch.Tensor:
        if index not in self._cache:
            self._cache[index] = load_audio(self.entries[index].path, self.sample_rate)
        rng = np.random.default_rng((self.seed, self.epoch, index)) if self.random_crop else None
        return crop_wave(self._cache[index], self.segment, rng)


def crop_wave(wav: np.ndarray, segment: int, rng: Optional[np.random.Generator]) -> torch.Tensor:
    """(N,) -> (1, segment): zero-padded when short, a random crop with ``rng``, else the centre one."""
    if len(wav) < segment:
        wav = np.pad(wav, (0, segment - len(wav)))
    span = len(wav) - segment
    start = int(rng.integers(0, span + 1)) if rng is not None else span // 2
    return torch.from_numpy(wav[start : start + segment].copy()).unsqueeze(0)
