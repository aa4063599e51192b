"""Stage-1 trainer (``model_type: "glow_wavegan_vae"``): the VAE-GAN on audio only, on the shared BaseTrainer.

Per step, on frame-aligned crops with encoder context (models/tts/glow_wavegan/dataset.py):

* the encoder gives ``q(z|x)`` for the central frames, a sample is decoded to the central ``segment_size``
  samples;
* discriminator (HiFi-GAN MPD + MSD): LSGAN on real vs detached generated audio;
* generator (encoder + decoder): LSGAN adversarial + feature matching x ``c_fm`` + mel L1 x ``c_mel`` + analytic
  per-element KL to N(0, I) x ``c_kl``.  Before ``adversarial_start_step`` only mel + KL are optimised.

Logged every step besides the losses: ``sigma_mean`` (mean posterior std) and ``mu_sq_mean`` (mean squared
posterior mean) — the KL weight sets the latent's scale, which stage 2 then has to model.
Optimisers AdamW(2e-4, (0.8, 0.99)) and ExponentialLR(0.999) per epoch, as the GAN vocoders.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn

from models.base.trainer import BaseTrainer
from models.tts.glow_wavegan.config import WaveGANDiscriminatorConfig, WaveGANExperimentConfig
from models.tts.glow_wavegan.dataset import WaveCrops
from models.tts.glow_wavegan.vae import WaveGANVAE
from modules.commons import sequence_mask
from modules.discriminators import CombinedDiscriminator, DiscriminatorP, MultiScaleDiscriminator
from modules.losses import discriminator_loss, feature_matching_loss, generator_loss, mel_l1_loss
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

    def build_models(self):
        d = self.cfg.data
        self.mel = VitsMelSpectrogram(d.sampling_rate, d.filter_length, d.hop_length, d.win_length,
                                      d.n_mel_channels, d.mel_fmin, d.mel_fmax)
        return {"generator": WaveGANVAE.from_config(self.cfg.model),
                "discriminator": build_discriminator(self.cfg.discriminator)}

    def build_optimizers(self, models):
        t = self.cfg.train
        return {n: torch.optim.AdamW(m.parameters(), t.learning_rate, betas=tuple(t.betas), eps=t.eps)
                for n, m in models.items()}  # fmt: skip

    def build_schedulers(self, optimizers):
        return {n: torch.optim.lr_scheduler.ExponentialLR(o, self.cfg.train.lr_decay) for n, o in optimizers.items()}

    def build_datasets(self):
        d, seed, context = self.cfg.data, self.cfg.train.seed, self.cfg.model.context_frames
        train = WaveCrops(d.train_manifest, d, context, seed, random_crop=True)
        valid = WaveCrops(d.valid_manifest, d, context, seed, random_crop=False) if d.valid_manifest else None
        return train, valid

    def collate(self, items):
        return collate_clips(items)

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        t = self.cfg.train
        mel_fn = self.mel.to(self.device)
        context = self.cfg.model.context_frames * self.cfg.data.hop_length
        wav = batch["wav"]
        y = wav[..., context:wav.size(-1) - context]
        out = self.models["generator"](wav)
        y_hat = out["wav_hat"]
        mel, mel_hat = mel_fn(y.squeeze(1)), mel_fn(y_hat.squeeze(1).float())
        loss_mel = mel_l1_loss(mel, mel_hat) * t.c_mel
        loss_kl = gaussian_kl_to_standard_normal(out["mean"], out["log_std"]) * t.c_kl
        values = {"loss_mel": loss_mel, "loss_kl": loss_kl,
                  "sigma_mean": torch.exp(out["log_std"].detach()).mean(), "mu_sq_mean": (out["mean"].detach() ** 2).mean()}
        if self.step < t.adversarial_start_step:
            loss_gen = loss_mel + loss_kl
            self.optimize("generator", loss_gen)
            return {"loss_gen": loss_gen, **values}

        disc = self.models["discriminator"]
        real, fake, _, _ = disc(y, y_hat.detach())
        loss_disc, _, _ = discriminator_loss(real, fake)
        self.optimize("discriminator", loss_disc)
        with self.frozen("discriminator"):
            _, fake, fmap_real, fmap_fake = disc(y, y_hat)
            loss_adv, _ = generator_loss(fake)
            loss_fm = feature_matching_loss(fmap_real, fmap_fake) * t.c_fm
        loss_gen = loss_adv + loss_fm + loss_mel + loss_kl
        self.optimize("generator", loss_gen)
        return {"loss_disc": loss_disc, "loss_gen": loss_gen, "loss_adv": loss_adv, "loss_fm": loss_fm, **values}

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        """Resynthesis of whole clips from the posterior mean: mel L1 over valid frames, mean sigma."""
        model: WaveGANVAE = self.unwrap("generator")
        mel_fn = self.mel.to(self.device)
        mean, log_std = model.encode(batch["wav"])
        wav_hat = model.decode(mean)
        frames = batch["lengths"] // self.cfg.data.hop_length
        mel = mel_fn(batch["wav"].squeeze(1))
        mel_hat = mel_fn(wav_hat.squeeze(1))
        n = min(mel.size(-1), mel_hat.size(-1))
        mask = sequence_mask(frames.to(mel.device), n).unsqueeze(1).to(mel.dtype)
        if index == 0:
            self.tracker.log_audio("valid/resynthesis", wav_hat[0, :, : int(batch["lengths"][0])],
                                   self.cfg.data.sampling_rate, self.step)
        return {"mel_l1": float(mel_l1_loss(mel[..., :n], mel_hat[..., :n], mask)),
                "sigma_mean": float(torch.exp(log_std).mean())}
