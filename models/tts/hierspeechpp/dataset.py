"""Training data for the HierSpeech++ synthesizer: audio crops, log-F0, SSL features (precomputed or not).

The manifest is read by :func:`processors.data.manifest.read_manifest`. One item is one utterance, cut to whole 50 Hz latent frames (hop 320 at 16 kHz) and, when longer than
``max_frames``, to a random window of ``max_frames`` frames (the full utterance only feeds the encoders; the
generator sees a further ``segment_frames`` window picked in the trainer, as in VITS). Randomness (crop start,
perturbation) depends only on ``(seed, epoch, index)``, so a resumed run draws exactly what an uninterrupted one
would.

Item fields (numpy -> torch in :func:`collate`):

* ``audio`` (N,) float32, N = 320·T
* ``audio_aug`` (N,) float32 NANSY-perturbed copy (only with ``perturb=True``; the trainer extracts its SSL)
* ``log_f0`` (4T,) float32 ln(F0 + 1) at 200 Hz, unvoiced 0 — precomputed file or ``f0_fn(audio)``
* ``ssl`` (C, T) / ``ssl_aug`` (C, T) float32 — only when precomputed files exist

Precomputed features are looked up as ``<features_dir>/<kind>/<id>.pt`` (kind ``ssl``, ``ssl_aug``, ``f0``;
:func:`processors.features.store.feature_path`),
each a float tensor saved with ``torch.save``, the layout written by the feature-extraction CLI; they must
cover the whole utterance at the frame rates above (a few trailing frames of padding are cut).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from processors.audio import load_audio
from processors.data.manifest import read_manifest
from processors.f0 import align_f0_length
from processors.features.store import load_feature
from processors.perturb import PerturbConfig, perturb

F0_PER_FRAME = 4  # F0 lives at 4x the latent frame rate (hop 80 vs 320)

LogF0Fn = Callable[[np.ndarray], np.ndarray]


class HierSpeechTrainDataset(Dataset):
    """Utterance crops with F0 and (optionally) SSL features; see the module docstring for fields."""

    def __init__(
        self,
        manifest: Optional[str | Path],
        *,
        sample_rate: int = 16000,
        hop_length: int = 320,
        max_frames: Optional[int] = None,
        min_frames: int = 1,
        features_dir: Optional[str | Path] = None,
        f0_fn: Optional[LogF0Fn] = None,
        perturb_audio: bool = True,
        perturb_config: Optional[PerturbConfig] = None,
        seed: int = 1234,
        random_crop: bool = True,
        cache: bool = True,
    ) -> None:
        self.rows = read_manifest(manifest) if manifest is not None else []  # None: shapes streamed items only
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.max_frames = max_frames
        self.min_frames = min_frames
        self.features_dir = Path(features_dir) if features_dir else None
        self.f0_fn = f0_fn
        self.perturb_audio = perturb_audio
        self.perturb_config = perturb_config or PerturbConfig()
        self.seed = seed
        self.random_crop = random_crop
        self.cache = cache
        self.epoch = 0
        self._cache: Dict[int, Dict[str, np.ndarray]] = {}
        if self.features_dir is None and f0_fn is None:
            raise ValueError("HierSpeechTrainDataset needs features_dir (precomputed f0) or an f0_fn")
        if self.features_dir is not None and not self.features_dir.is_dir():
            raise FileNotFoundError(f"features_dir not found: {self.features_dir}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration)."""
        return [float(row.duration or 0.0) for row in self.rows]

    def frame_lengths(self) -> List[int]:
        """Approximate item lengths in frames from the manifest durations (for length-bucketed batches)."""
        frames = []
        for row in self.rows:
            n = int(float(row.duration or 0.0) * self.sample_rate) // self.hop_length
            frames.append(min(n, self.max_frames) if self.max_frames else n)
        return frames

    # ------------------------------------------------------------------ loading
    def _feature(self, kind: str, item_id: str) -> Optional[np.ndarray]:
        if self.features_dir is None:
            return None
        value = load_feature(self.features_dir, kind, item_id, required=False)
        return None if value is None else value.numpy()

    def _load(self, index: int) -> Dict[str, np.ndarray]:
        if index in self._cache:
            return self._cache[index]
        row = self.rows[index]
        out = self.assemble(row.id, load_audio(row.path, self.sample_rate), self._feature("f0", row.id),
                            {kind: self._feature(kind, row.id) for kind in ("ssl", "ssl_aug")}, where=row.path)
        if self.cache:
            self._cache[index] = out
        return out

    def assemble(self, item_id: str, audio: np.ndarray, f0: Optional[np.ndarray], feats: Dict[str, Optional[np.ndarray]],
                 where: str = "") -> Dict[str, np.ndarray]:
        """One whole utterance: audio cut to whole frames, log-F0 (given or computed), the SSL features given."""
        frames = audio.shape[0] // self.hop_length
        if frames < self.min_frames:
            raise ValueError(f"{where or item_id}: {frames} frames, shorter than min_frames={self.min_frames}")
        out: Dict[str, np.ndarray] = {"audio": audio[: frames * self.hop_length].astype(np.float32)}
        if f0 is None:
            if self.f0_fn is None:
                raise FileNotFoundError(f"no precomputed f0 for {item_id!r} under {self.features_dir} and no f0_fn")
            f0 = self.f0_fn(out["audio"])
        out["log_f0"] = align_f0_length(np.asarray(f0, np.float32).reshape(-1), F0_PER_FRAME * frames)
        for kind in ("ssl", "ssl_aug"):
            feat = feats.get(kind)
            if feat is not None:
                feat = np.asarray(feat, np.float32)
                feat = feat[0] if feat.ndim == 3 else feat
                if feat.ndim != 2 or feat.shape[-1] < frames - 2:
                    raise ValueError(f"{kind} features of {item_id!r} have shape {feat.shape}, expected (C, ~{frames})")
                out[kind] = align_f0_length(feat, frames)
        return out

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> Dict[str, Any]:
        return self.crop(self._load(index), self.rows[index].id, np.random.default_rng((self.seed, self.epoch, index)))

    def crop(self, full: Dict[str, np.ndarray], item_id: str, rng: np.random.Generator) -> Dict[str, Any]:
        """The training item of a whole utterance: a window of at most ``max_frames`` (random with ``rng``)."""
        frames = full["audio"].shape[0] // self.hop_length
        start = 0
        if self.max_frames is not None and frames > self.max_frames:
            start = int(rng.integers(0, frames - self.max_frames + 1)) if self.random_crop else 0
            frames = self.max_frames
        hop = self.hop_length
        item: Dict[str, Any] = {
            "id": item_id,
            "audio": full["audio"][start * hop : (start + frames) * hop],
            "log_f0": full["log_f0"][F0_PER_FRAME * start : F0_PER_FRAME * (start + frames)],
        }
        for kind in ("ssl", "ssl_aug"):
            if kind in full:
                item[kind] = full[kind][:, start : start + frames]
        if self.perturb_audio and "ssl_aug" not in item:
            item["audio_aug"] = perturb(item["audio"], self.sample_rate, rng, self.perturb_config)
        return item


def collate(items: List[Dict[str, Any]], hop_length: int = 320) -> Dict[str, Any]:
    """Zero-pad a list of items into a batch.

    Returns:
        ``audio`` (B, 1, 320·T), ``audio_aug`` (B, 1, 320·T) if present, ``log_f0`` (B, 1, 4T),
        ``ssl``/``ssl_aug`` (B, C, T) if present, ``lengths`` (B,) frames, ``ids`` list.
    """
    if not items:
        raise ValueError("collate got an empty batch")
    lengths = torch.tensor([it["audio"].shape[0] // hop_length for it in items], dtype=torch.long)
    max_t = int(lengths.max())
    batch: Dict[str, Any] = {"ids": [it["id"] for it in items], "lengths": lengths}

    def stack(key: str, length: int) -> torch.Tensor:
        return torch.stack([torch.from_numpy(np.ascontiguousarray(align_f0_length(it[key], length))) for it in items])

    batch["audio"] = stack("audio", max_t * hop_length).unsqueeze(1)
    batch["log_f0"] = stack("log_f0", F0_PER_FRAME * max_t).unsqueeze(1)
    for key in ("audio_aug",):
        if all(key in it for it in items):
            batch[key] = stack(key, max_t * hop_length).unsqueeze(1)
    for key in ("ssl", "ssl_aug"):
        if all(key in it for it in items):
            batch[key] = stack(key, max_t)
    return batch
