"""Waveform clips for vocoder training: random ``segment_samples`` crops (train) or whole clips (valid).

Crops depend only on ``(seed, epoch, index)`` so a resumed run sees the same data as an uninterrupted one.
Audio is read per item (no in-memory cache: corpora can be large); the trainer computes mels on the device.
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch
from torch.utils.data import Dataset

from models.vocoders.gan.config import VocoderDataConfig
from processors.audio import load_audio
from processors.data.manifest import read_manifest


class VocoderClips(Dataset):
    """Items: ``(1, segment_samples)`` float crops (``random_crop``) or ``(1, T)`` clips cut to whole hops."""

    def __init__(self, manifest: str, data: VocoderDataConfig, seed: int, random_crop: bool):
        self.entries = read_manifest(manifest)
        if not self.entries:
            raise ValueError(f"{manifest}: no items")
        self.data = data
        self.seed = seed
        self.random_crop = random_crop
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration)."""
        return [e.duration for e in self.entries]

    def lengths(self) -> List[int]:
        return [int(e.duration * self.data.sample_rate) for e in self.entries]

    def __getitem__(self, index: int) -> torch.Tensor:
        wav = load_audio(self.entries[index].path, self.data.sample_rate)
        seg, hop = self.data.segment_samples, self.data.hop_length
        if self.random_crop:
            if len(wav) < seg:
                wav = np.pad(wav, (0, seg - len(wav)))
            start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(0, len(wav) - seg + 1))
            wav = wav[start:start + seg]
        else:
            limit = int(self.data.max_valid_seconds * self.data.sample_rate)
            wav = wav[: max(hop, min(len(wav), limit) // hop * hop)]
            if len(wav) < hop:
                wav = np.pad(wav, (0, hop - len(wav)))
        return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).unsqueeze(0)
