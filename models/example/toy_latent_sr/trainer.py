"""Trainer of stage 2 (the latent refiner) on top of a frozen stage-1 autoencoder.

The parts a model with a frozen component needs, and nothing else:

* ``build_frozen`` returns the stage-1 autoencoder from its checkpoint; the base trainer keeps it in eval
  mode without gradients, out of DDP, the optimizers and this model's checkpoints, and records its
  checkpoint dir, step and sha256 in every ``meta.json`` under ``frozen``;
* ``build_models`` returns only what is trained (``refiner``, which learns to change the code of band-limited
  audio so that the frozen stage-1 decoder turns it into the full-band original); its optimizer and learning-rate schedule come
  from ``train.optimizers`` / ``train.schedulers`` in the config;
* the dataset has ``durations()`` (from the manifest), so ``train.batching: {type: "duration", ...}`` forms
  batches of whole utterances by padded seconds.
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.example.toy_latent_sr.config import LatentSRExperimentConfig
from models.example.toy_latent_sr.dataset import BandLimitedPairs, pad_pairs
from models.example.toy_latent_sr.model import LatentRefiner, stage1_component
from utils.registry import register


def masked_l1(estimate: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean |estimate - target| over the valid steps of (B, C, T) tensors; ``lengths`` (B,) in steps."""
    mask = (torch.arange(target.shape[-1], device=target.device)[None, :] < lengths[:, None]).unsqueeze(1)
    return (estimate - target).abs().mul(mask).sum() / (mask.sum() * target.shape[1])


@register("trainer", "toy_latent_sr")
class LatentSRTrainer(BaseTrainer):
    config_class = LatentSRExperimentConfig

    def build_frozen(self):
        m = self.cfg.model
        return {"stage1": stage1_component(m.stage1_checkpoint, m.code_channels)}

    def build_models(self):
        return {"refiner": LatentRefiner.from_config(self.cfg.model)}

    def build_datasets(self):
        d = self.cfg.data
        valid = BandLimitedPairs(d.valid_manifest, d.sample_rate, d.low_rate) if d.valid_manifest else None
        return BandLimitedPairs(d.train_manifest, d.sample_rate, d.low_rate), valid

    def collate(self, items):
        return pad_pairs(items)

    def _restore(self, batch: Dict[str, torch.Tensor], refine: bool = True) -> torch.Tensor:
        """Band-limited (B, 1, T) -> stage-1 code -> refined code -> (B, 1, T) through the stage-1 decoder.

        Gradients flow through the frozen decoder into the refiner; the decoder's own weights never change.
        """
        stage1 = self.frozen_modules["stage1"]
        code = stage1.encode(batch["low"])
        return stage1.decode(self.models["refiner"](code) if refine else code, batch["low"].shape[-1])

    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        loss = masked_l1(self._restore(batch), batch["full"], batch["lengths"])
        self.optimize("refiner", loss)
        # what the duration batching produced: items and padded seconds of this batch
        padded = batch["full"].shape[0] * batch["full"].shape[-1] / self.cfg.data.sample_rate
        return {"wave_l1": loss, "items": float(batch["full"].shape[0]), "padded_seconds": padded}

    def valid_step(self, batch: Dict[str, torch.Tensor], index: int) -> Dict[str, float]:
        full, lengths = batch["full"], batch["lengths"]
        return {"wave_l1": float(masked_l1(self._restore(batch), full, lengths)),
                "wave_l1_unrefined": float(masked_l1(self._restore(batch, refine=False), full, lengths))}  # fmt: skip
