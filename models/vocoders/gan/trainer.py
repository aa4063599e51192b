"""Trainer of a standalone GAN mel vocoder on the shared BaseTrainer (``model_type: "gan_vocoder"``).

Per step, on random ``segment_samples`` crops: mel (VITS/HiFi-GAN log-mel) -> generator -> waveform;
discriminator LSGAN loss on real vs detached fake; generator LSGAN + feature matching x ``c_fm`` + mel L1 x
``c_mel`` (45), through :func:`models.base.adversarial.adversarial_step`. Optimisers and schedules come from
``train.optimizers`` / ``train.schedulers`` (configs: AdamW (0.8, 0.99) for both, ExponentialLR 0.999 per
epoch). The mel front end is a frozen component. Validation: copy synthesis of whole clips, mel L1 over their
valid frames.
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.adversarial import adversarial_step
from models.base.trainer import BaseTrainer
from models.vocoders.gan.config import VocoderExperimentConfig
from models.vocoders.gan.dataset import VocoderClips
from models.vocoders.gan.model import build_discriminator, build_generator
from modules.commons import sequence_mask
from modules.losses import mel_l1_loss
from processors.data.crops import collate_clips
from processors.spectrogram import VitsMelSpectrogram
from utils.registry import register


@register("trainer", "gan_vocoder")
class GANVocoderTrainer(BaseTrainer):
    config_class = VocoderExperimentConfig

    def build_frozen(self):
        return {"mel": VitsMelSpectrogram.from_config(self.cfg.data)}

    def build_models(self):
        cfg = self.cfg
        return {
            "generator": build_generator(cfg.model.generator, cfg.data.n_mel_channels),
            "discriminator": build_discriminator(cfg.model.discriminator),
        }

    def build_datasets(self):
        d, seed = self.cfg.data, self.cfg.train.seed
        train = VocoderClips(d.train_manifest, d, seed, random_crop=True)
        valid = VocoderClips(d.valid_manifest, d, seed, random_crop=False) if d.valid_manifest else None
        return train, valid

    def collate(self, items):
        return collate_clips(items)

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        mel_fn = self.frozen_modules["mel"]
        y = batch["wav"]
        mel = mel_fn(y.squeeze(1))
        y_hat = self.models["generator"](mel)
        mel_hat = mel_fn(y_hat.squeeze(1).float())
        t = self.cfg.train
        return adversarial_step(self, y, y_hat, {"loss_mel": mel_l1_loss(mel, mel_hat) * t.c_mel}, fm_weight=t.c_fm)

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        mel_fn = self.frozen_modules["mel"]
        hop = self.cfg.data.hop_length
        frames = batch["lengths"] // hop
        mel = mel_fn(batch["wav"].squeeze(1))
        y_hat = self.unwrap("generator")(mel)
        mel_hat = mel_fn(y_hat.squeeze(1))
        mask = sequence_mask(frames.to(mel.device), mel.size(-1)).unsqueeze(1).to(mel.dtype)
        if index == 0:
            n = int(batch["lengths"][0])
            self.tracker.log_audio("valid/copy_synthesis", y_hat[0, :, :n], self.cfg.data.sample_rate, self.step)
        return {"mel_l1": float(mel_l1_loss(mel, mel_hat, mask))}
