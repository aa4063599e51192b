"""SpeechSR trainer (HierSpeech++ recipe): mel L1 x45 + LSGAN + feature matching against MPD + MS-STFT.

Official settings (``speechsr{24k,48k}/config.json``, in ``configs/*.json5`` as ``train.optimizers`` /
``train.schedulers``): AdamW lr 1e-4, betas (0.8, 0.99), eps 1e-9, ExponentialLR 0.999 (24 kHz) / 0.995
(48 kHz) per epoch, batch 32, segment 9600 target samples, c_mel 45. The GAN step is
:func:`models.base.adversarial.adversarial_step`; the loss mel is a frozen component.
Discriminator: 5 STFT resolutions + MPD(2,3,5,7,11) for 24 kHz, 6 resolutions for 48 kHz
(``modules.discriminators.combined.speechsr_discriminator``). Mel for the loss per rate:
24 kHz 960/240/100 mels/fmax 12 k; 48 kHz 1280/320/128 mels/fmax 24 k (``processors.spectrogram.speechsr_mel``).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch

from models.base.adversarial import adversarial_step
from models.base.trainer import BaseTrainer
from models.sr.speechsr.dataset import SuperResolutionDataset, collate_pairs
from models.sr.speechsr.config import SpeechSRExperimentConfig
from models.sr.speechsr.model import SpeechSR
from modules.discriminators.combined import (DEFAULT_PERIODS, HIERSPEECHPP_RESOLUTIONS, SPEECHSR48K_RESOLUTIONS,
                                              hierspeechpp_discriminator, speechsr_discriminator)
from processors.spectrogram import speechsr_mel
from utils.registry import register


@register("trainer", "speechsr")
class SpeechSRTrainer(BaseTrainer):
    config_class = SpeechSRExperimentConfig

    def build_frozen(self):
        return {"mel": speechsr_mel(self.cfg.model.target_rate)}

    def build_models(self):
        m = self.cfg.model
        generator = SpeechSR.from_config(m)
        d = self.cfg.discriminator
        if d.periods is None and d.resolutions is None:
            discriminator = speechsr_discriminator(m.target_rate)
        else:
            resolutions = d.resolutions if d.resolutions is not None else (
                SPEECHSR48K_RESOLUTIONS if m.target_rate == 48000 else HIERSPEECHPP_RESOLUTIONS)
            periods = d.periods if d.periods is not None else DEFAULT_PERIODS
            discriminator = hierspeechpp_discriminator(resolutions, periods)
        return {"generator": generator, "discriminator": discriminator}

    def build_datasets(self):
        d, m, seed = self.cfg.data, self.cfg.model, self.cfg.train.seed
        train = SuperResolutionDataset(d.train_manifest, m.target_rate, d.segment_samples, seed, random_crop=True)
        valid = (SuperResolutionDataset(d.valid_manifest, m.target_rate, d.segment_samples, seed, random_crop=False)
                 if d.valid_manifest else None)
        return train, valid

    def collate(self, items):
        return collate_pairs(items)

    def train_step(self, batch: Tuple[torch.Tensor, torch.Tensor]) -> Dict[str, torch.Tensor]:
        x, y = batch
        y_hat = self.models["generator"](x)
        mel = self.frozen_modules["mel"]
        loss_mel = torch.nn.functional.l1_loss(mel(y_hat.squeeze(1)), mel(y.squeeze(1)))
        return adversarial_step(self, y, y_hat, {"loss_mel": self.cfg.train.c_mel * loss_mel})

    @torch.no_grad()
    def valid_step(self, batch: Tuple[torch.Tensor, torch.Tensor], index: int) -> Dict[str, float]:
        x, y = batch
        y_hat = self.models["generator"](x)
        if index == 0:
            self.tracker.log_audio("valid/sr", y_hat[0], self.cfg.model.target_rate, self.step)
        mel = self.frozen_modules["mel"]
        return {"mel_l1": float(torch.nn.functional.l1_loss(mel(y_hat.squeeze(1)), mel(y.squeeze(1))))}
