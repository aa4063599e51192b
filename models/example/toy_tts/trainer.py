"""Toy TTS training: (phoneme ids, given durations, log-mel) rows; L1 on the mel + MSE on log(1 + frames)."""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.example.toy_tts.config import ToyTTSExperimentConfig
from models.example.toy_tts.model import ToyTTS
from modules.commons import sequence_mask
from processors.data.durations import PhonemeDurationMels, collate_phoneme_durations
from utils.registry import register


@register("trainer", "toy_tts")
class ToyTTSTrainer(BaseTrainer):
    config_class = ToyTTSExperimentConfig

    def build_models(self):
        return {"tts": ToyTTS.from_config(self.cfg.model)}

    def build_datasets(self):
        d = self.cfg.data
        train = PhonemeDurationMels(d.train_manifest, d.mel, d.max_seconds)
        return train, PhonemeDurationMels(d.valid_manifest, d.mel, d.max_seconds) if d.valid_manifest else None

    def collate(self, items):
        return collate_phoneme_durations(items)
    def losses(self, batch) -> Dict[str, torch.Tensor]:
        out = self.models["tts"](batch["ids"], batch["lengths"], batch["frames"])
        frame_mask = sequence_mask(batch["mel_lengths"], batch["mel"].size(2)).unsqueeze(1)
        mel = (out["mel"] - batch["mel"]).abs().masked_select(frame_mask).mean()
        target = torch.log1p(batch["frames"].float())
        duration = (out["log_durations"] - target).pow(2).masked_select(out["mask"].bool()).mean()
        return {"mel_l1": mel, "duration_mse": duration}

    def train_step(self, batch):
        losses = self.losses(batch)
        self.optimize("tts", losses["mel_l1"] + losses["duration_mse"])
        return losses

    def valid_step(self, batch, index: int):
        return {name: float(value) for name, value in self.losses(batch).items()}
