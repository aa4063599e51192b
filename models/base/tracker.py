"""Experiment logging: TensorBoard scalars, audio, mel and F0 images, and a JSONL loss log.

The JSONL log (``<exp_dir>/train_log.jsonl``, one line per optimizer step) is the machine-readable record
that tests and scripts read; TensorBoard is for people. Only the main process writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch


class Tracker:
    def __init__(self, exp_dir: str | os.PathLike, enabled: bool = True, tensorboard: bool = True):
        self.exp_dir = Path(exp_dir)
        self.enabled = enabled
        self._writer = None
        self._jsonl = None
        if not enabled:
            return
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.exp_dir / "train_log.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional at run time
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(log_dir=str(self.exp_dir / "tensorboard"))

    def log_step(self, step: int, values: Mapping[str, float], split: str = "train") -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split, **{k: _to_float(v) for k, v in values.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"{split}/{key}", _to_float(value), step)

    def log_audio(self, tag: str, wav: torch.Tensor | np.ndarray, sample_rate: int, step: int) -> None:
        if not self.enabled or self._writer is None:
            return
        wav = torch.as_tensor(wav).detach().float().cpu().reshape(-1)
        self._writer.add_audio(tag, wav.clamp(-1, 1), step, sample_rate=sample_rate)

    def log_mel(self, tag: str, mels: Mapping[str, Any], step: int) -> None:
        """Plot one or more (n_mels, T) arrays one above another."""
        if not self.enabled or self._writer is None:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(mels), 1, figsize=(8, 2.2 * len(mels)), squeeze=False)
        for ax, (name, mel) in zip(axes[:, 0], mels.items()):
            ax.imshow(np.asarray(torch.as_tensor(mel).detach().float().cpu()), aspect="auto", origin="lower")
            ax.set_title(name)
        fig.tight_layout()
        self._writer.add_figure(tag, fig, step)
        plt.close(fig)

    def log_f0(self, tag: str, contours: Mapping[str, Any], step: int) -> None:
        """Overlay F0 contours (1-D arrays, 0 = unvoiced)."""
        if not self.enabled or self._writer is None:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 2.5))
        for name, f0 in contours.items():
            f0 = np.asarray(torch.as_tensor(f0).detach().float().cpu()).reshape(-1)
            ax.plot(np.where(f0 > 0, f0, np.nan), label=name)
        ax.legend()
        fig.tight_layout()
        self._writer.add_figure(tag, fig, step)
        plt.close(fig)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().cpu())
    return float(value)


def read_log(exp_dir: str | os.PathLike, split: Optional[str] = "train") -> Dict[int, Dict[str, float]]:
    """Last record per step from ``train_log.jsonl`` (a resumed run rewrites the steps it repeats)."""
    out: Dict[int, Dict[str, float]] = {}
    path = Path(exp_dir) / "train_log.jsonl"
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if split is None or rec.get("split") == split:
            out[rec["step"]] = rec
    return out
