"""Random fixed-length waveform crops from a JSONL manifest (id, path, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from torch.utils.data import Dataset

from processors.audio import load_audio


def read_manifest(path: str | Path) -> List[Dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"manifest {path} has no items")
    return rows


class WaveCropDataset(Dataset):
    """Item = (1, segment) float32 crop; the crop start depends only on (seed, epoch, index)."""

    def __init__(self, manifest: str | Path, sample_rate: int, segment: int, seed: int, random_crop: bool):
        self.rows = read_manifest(manifest)
        self.sample_rate = sample_rate
        self.segment = segment
        self.seed = seed
        self.random_crop = random_crop
        self.epoch = 0
        base = Path(manifest).parent
        self._paths = [Path(r["path"]) if Path(r["path"]).is_absolute() else base / r["path"] for r in self.rows]
        self._cache: Dict[int, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if index not in self._cache:
            self._cache[index] = load_audio(self._paths[index], self.sample_rate)
        wav = self._cache[index]
        if len(wav) < self.segment:
            wav = np.pad(wav, (0, self.segment - len(wav)))
        span = len(wav) - self.segment
        if self.random_crop:
            start = int(np.random.default_rng((self.seed, self.epoch, index)).integers(0, span + 1))
        else:
            start = span // 2
        return torch.from_numpy(wav[start : start + self.segment].copy()).unsqueeze(0)
