"""Training data of both stages.

* :class:`WaveCrops` (stage 1): the shared :class:`processors.data.crops.AudioCrops` with frame-aligned random
  crops of ``segment_samples`` samples plus ``context_frames`` of encoder context on each side (the clip is
  zero-padded by that context, as the encoder's own padding does at extraction time); validation items are whole
  clips cut to whole hops.  Crops depend only on ``(seed, epoch, index)`` so a resumed run sees the same data.
* :class:`LatentTextDataset` (stage 2): symbol ids + the stored posterior ``mean, log_std (D, T)`` of the frozen
  stage-1 encoder (the ``glow_wavegan_latent`` feature, :mod:`models.tts.glow_wavegan.latents`); rows without usable text or latents are skipped and
  listed in ``skipped``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch.utils.data import Dataset

from models.base.text_split import front_end_ids
from models.tts.glow_wavegan.config import AudioDataConfig, LatentDataConfig
from models.tts.glow_wavegan.latents import LATENT_FEATURE, LatentStore
from processors.data.crops import AudioCrops
from processors.data.manifest import check_usable, read_manifest, speaker_index
from processors.text.frontend import TextError, TextFrontend, cleaned_to_ids, intersperse


class WaveCrops(AudioCrops):
    """Items: ``(1, segment + 2 * context * hop)`` frame-aligned crops (``random_crop``) or ``(1, T * hop)`` clips."""

    def __init__(self, manifest: str, data: AudioDataConfig, context_frames: int, seed: int, random_crop: bool):
        super().__init__(manifest, sample_rate=data.sample_rate, segment_samples=data.segment_samples,
                         hop_length=data.hop_length, seed=seed, random_crop=random_crop,
                         max_valid_seconds=data.max_valid_seconds, context=context_frames * data.hop_length,
                         crop_step=data.hop_length)  # fmt: skip


def text_to_ids(text: str, data: LatentDataConfig, frontend: TextFrontend) -> List[int]:
    """Transcript (or phonemes when ``cleaned_text``) -> symbol ids, blanks interspersed when ``add_blank``."""
    if data.cleaned_text:
        ids = cleaned_to_ids(text, source=text)
        if not ids:
            raise TextError(f"empty phoneme string {text!r}")
        return intersperse(ids) if data.add_blank else ids
    return list(front_end_ids(frontend, text))  # says "the English front end cannot read this text" when so


class LatentTextDataset(Dataset):
    """Items ``{"id", "text" (Tx,) long, "mean", "log_std" (D, T), "sid"}`` for stage-2 training."""

    def __init__(self, manifest: str, data: LatentDataConfig, store: LatentStore, n_speakers: int):
        self.store = store
        frontend = TextFrontend(add_blank=data.add_blank)
        self.items: List[Tuple[str, List[int], int]] = []
        self.seconds: List[float] = []  # manifest durations, for train.batching by duration
        self.skipped: List[Tuple[str, str]] = []
        for entry in read_manifest(manifest):
            try:
                ids = text_to_ids(entry.text, data, frontend)
                n_symbols = len(ids) if not data.add_blank else (len(ids) - 1) // 2
                if not data.min_text_len <= n_symbols <= data.max_text_len:
                    raise ValueError(f"{n_symbols} symbols outside [{data.min_text_len}, {data.max_text_len}]")
                if not store.has(entry.id):
                    raise ValueError(f"no {LATENT_FEATURE} feature under {store.features_dir}")
                sid = speaker_index(entry.speaker, data.speakers, n_speakers)
            except (TextError, ValueError) as err:
                self.skipped.append((entry.id, str(err)))
                continue
            self.items.append((entry.id, ids, sid))
            self.seconds.append(entry.duration)
        check_usable(manifest, len(self.items), self.skipped)

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> List[int]:
        return [len(ids) for _, ids, _ in self.items]

    def durations(self) -> List[float]:
        """Seconds per item from the manifest (for ``train.batching`` by duration)."""
        return list(self.seconds)

    def __getitem__(self, index: int) -> Dict[str, object]:
        item_id, ids, sid = self.items[index]
        mean, log_std = self.store.load(item_id)
        return {"id": item_id, "text": torch.tensor(ids, dtype=torch.long), "mean": mean, "log_std": log_std, "sid": sid}


def collate_latents(items: List[Dict[str, object]]) -> Dict[str, torch.Tensor]:
    """Pad into ``text (B, Tx)``, ``mean, log_std (B, D, Ty)`` (log_std padded with 0) + lengths and ``sid``."""
    text_len = torch.tensor([len(it["text"]) for it in items], dtype=torch.long)
    frames = torch.tensor([it["mean"].size(1) for it in items], dtype=torch.long)
    channels = items[0]["mean"].size(0)
    text = torch.zeros(len(items), int(text_len.max()), dtype=torch.long)
    mean = torch.zeros(len(items), channels, int(frames.max()))
    log_std = torch.zeros_like(mean)
    for b, it in enumerate(items):
        text[b, : text_len[b]] = it["text"]
        mean[b, :, : frames[b]] = it["mean"]
        log_std[b, :, : frames[b]] = it["log_std"]
    return {"text": text, "text_lengths": text_len, "mean": mean, "log_std": log_std, "latent_lengths": frames,
            "sid": torch.tensor([int(it["sid"]) for it in items], dtype=torch.long)}  # fmt: skip


def load_latent_datasets(data: LatentDataConfig, n_speakers: int, expected_channels: int
                         ) -> Tuple[LatentTextDataset, Optional[LatentTextDataset]]:
    store = LatentStore.open(Path(data.features_dir), expected_channels=expected_channels,
                             stage1_ckpt=data.stage1_ckpt or None)
    train = LatentTextDataset(data.train_manifest, data, store, n_speakers)
    valid = LatentTextDataset(data.valid_manifest, data, store, n_speakers) if data.valid_manifest else None
    return train, valid
