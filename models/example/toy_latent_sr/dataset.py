"""Whole utterances with their band-limited copies, for duration batching (manifest ``duration`` in seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np
import torch

from processors.audio import load_audio, resample
from processors.data.manifest_dataset import ManifestDataset


def band_limit(wav: np.ndarray, sample_rate: int, low_rate: int) -> np.ndarray:
    """(T,) -> (T,): down to ``low_rate`` and back, the degradation the SR pipeline undoes at inference."""
    low = resample(resample(wav, sample_rate, low_rate), low_rate, sample_rate)
    return np.pad(low, (0, max(len(wav) - len(low), 0)))[: len(wav)]


class BandLimitedPairs(ManifestDataset):
    """Item = (full-band (T,), band-limited (T,)) float32 tensors of one whole utterance."""

    def __init__(self, manifest: str | Path, sample_rate: int, low_rate: int):
        super().__init__(manifest)
        self.sample_rate = sample_rate
        self.low_rate = low_rate
        self._cache: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if index not in self._cache:
            wav = load_audio(self.entries[index].path, self.sample_rate)
            low = band_limit(wav, self.sample_rate, self.low_rate)
            self._cache[index] = (torch.from_numpy(wav), torch.from_numpy(low))
        return self._cache[index]


def pad_pairs(items: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Zero-pad to the longest item: ``full``/``low`` (B, 1, T_max) and ``lengths`` (B,) in samples."""
    lengths = torch.tensor([len(full) for full, _ in items])
    full = torch.zeros(len(items), 1, int(lengths.max()))
    low = torch.zeros_like(full)
    for i, (f, l) in enumerate(items):
        full[i, 0, : len(f)] = f
        low[i, 0, : len(l)] = l
    return {"full": full, "low": low, "lengths": lengths}
