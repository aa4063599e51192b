"""Stage-1 trainer (``model_type: "glow_wavegan_vae"``): the VAE-GAN on audio only, on the shared BaseTrainer.

Per step, on frame-aligned crops with encoder context (models/tts/glow_wavegan/dataset.py):

* the encoder gives ``q(z|x)`` for the central frames, a sample is decoded to the central ``segment_samples``
  samples;
* :func:`models.base.adversarial.adversarial_step` with the HiFi-GAN MPD + MSD: LSGAN discriminator update on
  real vs detached generated audio, then the generator (encoder + decoder) on LSGAN adversarial + feature
  matching x ``c_fm`` + ``loss_mel`` (mel L1 x ``c_mel``) + ``loss_kl`` (analytic per-element KL to N(0, I) x
  ``c_kl``).  Before ``adversarial_start_step`` the discriminators sit out: only mel + KL are optimised.

Logged every step besides the losses: ``sigma_mean`` (mean posterior std) and ``mu_sq_mean`` (mean squared
posterior mean) — the KL weight sets the latent's scale, which stage 2 then has to model.
Optimisers and schedules come from ``train.optimizers`` / ``train.schedulers`` (configs: AdamW(2e-4, (0.8, 0.99))
and ExponentialLR(0.999) per epoch, as the GAN vocoders). The mel front end is a frozen component.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn

from models.base.adversarial import adversarial_step
from models.base.trainer import BaseTrainer
from models.tts.glow_wavegan.config import WaveGANDiscriminatorConfig, WaveGANExperimentConfig
from models.tts.glow_wavegan.dataset import WaveCrops
from models.tts.glow_wavegan.vae import WaveGANVAE
from modules.commons import sequence_mask
from modules.discriminators import CombinedDiscriminator, DiscriminatorP, MultiScaleDiscriminator
from modules.losses import mel_l1_loss
from modules.wave_encoder import gaussian_kl_to_standard_normal
from processors.data.crops import collate_clips
from processors.spectrogram import VitsMelSpectrogram
from utils.registry import register


def build_discriminator(cfg: WaveGANDiscriminatorConfig) -> CombinedDiscriminator:
    subs: List[nn.Module] = [DiscriminatorP(p, channels=cfg.period_channels) for p in cfg.periods]
    if cfg.msd_scales > 0:
        subs.append(MultiScaleDiscriminator(cfg.msd_scales))
    return CombinedDiscriminator(subs)


@register("trainer", "glow_wavegan_vae")
class WaveGANTrainer(BaseTrainer):
    config_class = WaveGANExperimentConfig

    def build_frozen(self):
        return {"mel": VitsMelSpectrogram.from_config(self.cfg.data)}

    def build_models(self):
        return {"generator": WaveGANVAE.from_config(self.cfg.model),
                "discriminator": build_discriminator(self.cfg.discriminator)}  # fmt: skip

    def build_datasets(self):
        d, seed, context = self.cfg.data, self.cfg.train.seed, self.cfg.model.context_frames
        train = WaveCrops(d.train_manifest, d, context, seed, random_crop=True)
        valid = WaveCrops(d.valid_manifest, d, context, seed, random_crop=False) if d.valid_manifest else None
        return train, valid

    def collate(self, items):
        return collate_clips(items)

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        t = self.cfg.train
        mel_fn = self.frozen_modules["mel"]
        context = self.cfg.model.context_frames * self.cfg.data.hop_length
        wav = batch["wav"]
        y = wav[..., context : wav.size(-1) - context]
        out = self.models["generator"](wav)
        y_hat = out["wav_hat"]
        mel, mel_hat = mel_fn(y.squeeze(1)), mel_fn(y_hat.squeeze(1).float())
        terms = {"loss_mel": mel_l1_loss(mel, mel_hat) * t.c_mel,
                 "loss_kl": gaussian_kl_to_standard_normal(out["mean"], out["log_std"]) * t.c_kl}  # fmt: skip
        losses = adversarial_step(self, y, y_hat, terms, fm_weight=t.c_fm,
                                  use_discriminator=self.step >= t.adversarial_start_step)  # fmt: skip
        return {**losses, "sigma_mean": torch.exp(out["log_std"].detach()).mean(),
                "mu_sq_mean": (out["mean"].detach() ** 2).mean()}  # fmt: skip

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        """Resynthesis of whole clips from the posterior mean: mel L1 over valid frames, mean sigma."""
        model: WaveGANVAE = self.unwrap("generator")
        mel_fn = self.frozen_modules["mel"]
        mean, log_std = model.encode(batch["wav"])
        wav_hat = model.decode(mean)
        frames = batch["lengths"] // self.cfg.data.hop_length
        mel = mel_fn(batch["wav"].squeeze(1))
        mel_hat = mel_fn(wav_hat.squeeze(1))
        n = min(mel.size(-1), mel_hat.size(-1))
        mask = sequence_mask(frames.to(mel.device), n).unsqueeze(1).to(mel.dtype)
        if index == 0:
            self.tracker.log_audio("valid/resynthesis", wav_hat[0, :, : int(batch["lengths"][0])],
                                   self.cfg.data.sample_rate, self.step)
        return {"mel_l1": float(mel_l1_loss(mel[..., :n], mel_hat[..., :n], mask)),
                "sigma_mean": float(torch.exp(log_std).mean())}
