"""Trainer of the toy autoencoder: one model, L1 reconstruction.

Everything else comes from the base trainer and the config: the optimizer and its schedule
(``train.optimizers`` / ``train.schedulers``), fixed-size or duration batches (``train.batching``).
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.example.toy_autoencoder.config import ToyExperimentConfig
from models.example.toy_autoencoder.dataset import WaveCropDataset
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from utils.registry import register


@register("trainer", "toy_autoencoder")
class ToyTrainer(BaseTrainer):
    config_class = ToyExperimentConfig

    def build_models(self):
        return {"autoencoder": ToyWaveAutoencoder.from_config(self.cfg.model)}

    def build_datasets(self):
        d, seed = self.cfg.data, self.cfg.train.seed
        train = WaveCropDataset(d.train_manifest, d.sample_rate, d.segment, seed, random_crop=True)
        valid = WaveCropDataset(d.valid_manifest, d.sample_rate, d.segment, seed, False) if d.valid_manifest else None
        return train, valid

    def train_step(self, batch: torch.Tensor) -> Dict[str, torch.Tensor]:
        recon = self.models["autoencoder"](batch)
        loss = torch.nn.functional.l1_loss(recon, batch)
        self.optimize("autoencoder", loss)
        return {"l1": loss}

    def valid_step(self, batch: torch.Tensor, index: int) -> Dict[str, float]:
        recon = self.models["autoencoder"](batch)
        if index == 0:
            self.tracker.log_audio("valid/recon", recon[0], self.cfg.data.sample_rate, self.step)
        return {"l1": float(torch.nn.functional.l1_loss(recon, batch))}
