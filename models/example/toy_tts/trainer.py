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
        def read(manifest):  # rows without durations are used only by a model with an aligner
            return PhonemeDurationMels(manifest, d, d.max_seconds, need_durations=not self.cfg.model.aligner)
        return read(d.train_manifest), read(d.valid_manifest) if d.valid_manifest else None

    def collate(self, items):
        return collate_phoneme_durations(items)

    def losses(self, batch) -> Dict[str, torch.Tensor]:
        out = self.models["tts"](batch["ids"], batch["lengths"], batch["frames"], batch["mel"], batch["mel_lengths"])
        frame_mask = sequence_mask(batch["mel_lengths"], batch["mel"].size(2)).unsqueeze(1)
        losses = {"mel_l1": (out["mel"] - batch["mel"]).abs().masked_select(frame_mask).mean()}
        target = torch.log1p(out["frames"].float())
        losses["duration_mse"] = (out["log_durations"] - target).pow(2).masked_select(out["mask"].bool()).mean()
        return {**losses, "prior_nll": out["prior_loss"]} if "prior_loss" in out else losses

    def train_step(self, batch):
        losses = self.losses(batch)
        self.optimize("tts", sum(losses.values()))
        return losses

    def valid_step(self, batch, index: int):
        return {name: float(value) for name, value in self.losses(batch).items()}
