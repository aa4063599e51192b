"""Trainer of the toy autoencoder: one model, L1 reconstruction.

Everything else comes from the base trainer and the config: the optimizer and its schedule
(``train.optimizers`` / ``train.schedulers``), fixed-size or duration batches (``train.batching``).
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.shar_stream import cut_crop_rng
from models.base.trainer import BaseTrainer
from models.example.toy_autoencoder.config import ToyExperimentConfig
from models.example.toy_autoencoder.dataset import WaveCropDataset, crop_wave
from models.example.toy_autoencoder.model import ToyWaveAutoencoder
from processors.data.shar_reader import cut_audio
from utils.registry import register


@register("trainer", "toy_autoencoder")
class ToyTrainer(BaseTrainer):
    config_class = ToyExperimentConfig

    def build_models(self):
        return {"autoencoder": ToyWaveAutoencoder.from_config(self.cfg.model)}

    def build_datasets(self):
        d, seed = self.cfg.data, self.cfg.train.seed
        return WaveCropDataset(d.train_manifest, d.sample_rate, d.segment, seed, random_crop=True), self.build_valid_dataset()

    shar_fields = ["recording"]

    def item_from_cut(self, cut) -> torch.Tensor:
        """A streamed cut -> the same (1, segment) random crop as the manifest dataset's item."""
        if cut.sampling_rate != self.cfg.data.sample_rate:
            raise ValueError(f"shard audio of {cut.id} is {cut.sampling_rate} Hz, data.sample_rate is "
                             f"{self.cfg.data.sample_rate}: write the shards with --audio_rate {self.cfg.data.sample_rate}")
        wav = cut_audio(cut)
        return crop_wave(wav, self.cfg.data.segment, cut_crop_rng(self.cfg.train.seed, self.epoch, cut.id))

    def build_valid_dataset(self):
        d = self.cfg.data
        return WaveCropDataset(d.valid_manifest, d.sample_rate, d.segment, self.cfg.train.seed, False) if d.valid_manifest else None

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
