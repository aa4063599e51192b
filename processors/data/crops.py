"""Waveform clips for models trained on audio windows (GAN vocoders, the Glow-WaveGAN stage-1 VAE).

:class:`AudioCrops` items are ``(1, L)`` float32 tensors read per item from a manifest (no in-memory cache:
corpora can be large):

* training (``random_crop``): a random ``segment_samples`` window plus ``context`` samples on each side (the clip is
  zero-padded by that context, and on the right up to one window when it is shorter). The window starts on a
  multiple of ``crop_step`` samples (1: anywhere; the hop: frame-aligned). The start depends only on
  ``(seed, epoch, index)``, so a resumed run sees the same data as an uninterrupted one;
* validation: the whole clip, cut to ``max_valid_seconds`` and to whole hops (at least one hop, zero-padded).

:func:`collate_clips` pads such items into a batch.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch

from processors.audio import load_audio
from processors.data.manifest_dataset import ManifestDataset


class AudioCrops(ManifestDataset):
    """Items: ``(1, segment_samples + 2 * context)`` crops (``random_crop``) or ``(1, k * hop_length)`` whole clips.

    Args:
        manifest: JSONL manifest (processors/data/manifest.py); only paths and durations are used.
        sample_rate: rate the audio is loaded (and resampled) at.
        segment_samples: training window in samples.
        hop_length: validation clips are cut to whole hops.
        seed: base seed of the crop positions.
        random_crop: training crops (True) or whole validation clips (False).
        max_valid_seconds: validation clips are cut to this length.
        context: samples of extra input on each side of a training window (an encoder's receptive context).
        crop_step: training windows start on multiples of this many samples.
    """

    def __init__(self, manifest: str, *, sample_rate: int, segment_samples: int, hop_length: int, seed: int,
                 random_crop: bool, max_valid_seconds: float, context: int = 0, crop_step: int = 1):  # fmt: skip
        if crop_step < 1 or context < 0:
            raise ValueError(f"crop_step must be >= 1 and context >= 0, got {crop_step} and {context}")
        super().__init__(manifest)
        if not self.entries:
            raise ValueError(f"{manifest}: no items")
        self.sample_rate = sample_rate
        self.segment_samples = segment_samples
        self.hop_length = hop_length
        self.seed = seed
        self.random_crop = random_crop
        self.max_valid_seconds = max_valid_seconds
        self.context = context
        self.crop_step = crop_step

    def lengths(self) -> List[int]:
        return [int(e.duration * self.sample_rate) for e in self.entries]

    def _crop(self, wav: np.ndarray, index: int) -> np.ndarray:
        seg, ctx, step = self.segment_samples, self.context, self.crop_step
        wav = np.pad(wav, (ctx, ctx + max(0, seg - len(wav))))
        n_starts = (len(wav) - seg - 2 * ctx) // step + 1
        start = step * int(np.random.default_rng((self.seed, self.epoch, index)).integers(0, n_starts))
        return wav[start : start + seg + 2 * ctx]

    def _whole(self, wav: np.ndarray) -> np.ndarray:
        hop = self.hop_length
        limit = int(self.max_valid_seconds * self.sample_rate)
        wav = wav[: max(hop, min(len(wav), limit) // hop * hop)]
        return np.pad(wav, (0, max(0, hop - len(wav))))

    def __getitem__(self, index: int) -> torch.Tensor:
        wav = load_audio(self.entries[index].path, self.sample_rate)
        wav = self._crop(wav, index) if self.random_crop else self._whole(wav)
        return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).unsqueeze(0)


def collate_clips(items: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``(1, T_i)`` clips -> ``wav (B, 1, max T)`` zero-padded and ``lengths (B,)``."""
    lengths = torch.tensor([x.size(-1) for x in items], dtype=torch.long)
    wav = torch.zeros(len(items), 1, int(lengths.max()))
    for b, x in enumerate(items):
        wav[b, :, : x.size(-1)] = x
    return {"wav": wav, "lengths": lengths}
