"""The part every manifest-backed training dataset shares: its entries, their durations and the epoch.

Datasets whose random crops depend only on ``(seed, epoch, index)`` (so a resumed run sees the same data as an
uninterrupted one) get the epoch from the trainer through :meth:`ManifestDataset.set_epoch`; duration-bucketed
batching (``train.batching``) reads :meth:`ManifestDataset.durations`.
"""

from __future__ import annotations

import os
from typing import List

from torch.utils.data import Dataset

from processors.data.manifest import read_manifest


class ManifestDataset(Dataset):
    """Map-style dataset over the entries of a JSONL manifest; subclasses write ``__getitem__``."""

    def __init__(self, manifest: str | os.PathLike) -> None:
        self.entries = read_manifest(manifest)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration)."""
        return [entry.duration for entry in self.entries]
