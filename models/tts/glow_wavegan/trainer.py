"""Stage-2 trainer (``model_type: "glow_wavegan"``): Glow-TTS on latents of the frozen stage-1 encoder.

Per step the target is a fresh sample ``z = mean + exp(log_std) * eps`` of the stored posterior (``data.target:
"sample"``; ``"mean"`` uses the posterior mean), so the flow learns the distribution the stage-1 decoder was
trained on.  Loss = Glow-TTS ``mle_loss`` + ``duration_loss``.  A fresh run starts with the ActNorm
data-dependent init on its first batch (``train.ddi``; glow-tts runs it as a separate pass).

Optimiser and schedule come from ``train.optimizers`` / ``train.schedulers`` (configs/base.json5: glow-tts's
Adam(0.9, 0.98, eps 1e-9) with the ``noam`` schedule, stepped per optimizer step); ``train.batching`` may batch by
duration (the manifest's).  glow-tts clips gradient values at 5; here ``train.grad_clip_norm`` applies.

The stage-1 VAE of ``data.stage1_ckpt`` is a frozen component: its source (dir, step, weights' sha256) is in
every checkpoint's ``meta.json``, and validation decodes one text-to-speech sample with it.
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig
from models.tts.glow_wavegan.dataset import collate_latents, load_latent_datasets
from models.tts.glow_wavegan.vae import frozen_stage1
from modules.commons import sequence_mask
from utils.registry import register

# the glow-tts notebook's prior temperature, for the validation sample
VALID_NOISE_SCALE = 0.667


@register("trainer", "glow_wavegan")
class GlowWaveGANTrainer(BaseTrainer):
    config_class = GlowWaveGANExperimentConfig

    def build_frozen(self):
        stage1 = self.cfg.data.stage1_ckpt
        return {"stage1": frozen_stage1(stage1)} if stage1 else {}

    def build_models(self):
        self._ddi_pending = self.cfg.train.ddi
        return {"acoustic": GlowTTS.from_config(self.cfg.model)}

    def build_datasets(self):
        return load_latent_datasets(self.cfg.data, self.cfg.model.n_speakers, self.cfg.model.out_channels)

    def collate(self, items):
        return collate_latents(items)

    def item_lengths(self, dataset):
        return dataset.lengths()

    def _sid(self, batch):
        return batch["sid"] if self.cfg.model.n_speakers > 1 else None

    def latent_target(self, batch) -> torch.Tensor:
        """``(B, D, T)`` training target: a posterior sample (or the mean), zero on padded frames."""
        mean, log_std = batch["mean"], batch["log_std"]
        mask = sequence_mask(batch["latent_lengths"], mean.size(-1)).unsqueeze(1).to(mean.dtype)
        if self.cfg.data.target == "mean":
            return mean * mask
        return (mean + torch.exp(log_std) * torch.randn_like(mean)) * mask

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        y = self.latent_target(batch)
        if self._ddi_pending and self.step == 0:
            self.unwrap("acoustic").data_dependent_init(batch["text"], batch["text_lengths"], y, batch["latent_lengths"],
                                                        sid=self._sid(batch))
        self._ddi_pending = False
        out = self.models["acoustic"](batch["text"], batch["text_lengths"], y, batch["latent_lengths"],
                                      sid=self._sid(batch))
        loss_mle, loss_dur = GlowTTS.losses(out, batch["text_lengths"])
        loss = loss_mle + loss_dur
        self.optimize("acoustic", loss)
        return {"loss": loss, "loss_mle": loss_mle, "loss_dur": loss_dur}

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        """Both losses on the posterior means (deterministic), in eval mode; the first batch's first text is also
        spoken through the frozen stage-1 decoder (logged audio)."""
        model: GlowTTS = self.unwrap("acoustic")
        mask = sequence_mask(batch["latent_lengths"], batch["mean"].size(-1)).unsqueeze(1).to(batch["mean"].dtype)
        out = model(batch["text"], batch["text_lengths"], batch["mean"] * mask, batch["latent_lengths"],
                    sid=self._sid(batch))
        loss_mle, loss_dur = GlowTTS.losses(out, batch["text_lengths"])
        if index == 0 and "stage1" in self.frozen_modules:
            self._log_tts_sample(model, batch)
        return {"loss_mle": float(loss_mle), "loss_dur": float(loss_dur)}

    def _log_tts_sample(self, model: GlowTTS, batch) -> None:
        sid = self._sid(batch)
        n_text = int(batch["text_lengths"][0])
        gen = model.infer(batch["text"][:1, :n_text], batch["text_lengths"][:1], sid=None if sid is None else sid[:1],
                          noise_scale=VALID_NOISE_SCALE)
        frames = int(gen["y_lengths"][0])
        wav = self.frozen_modules["stage1"].decode(gen["y"][:, :, :frames])
        rate = int(self.train_set.store.description["stage1_sample_rate"])
        self.tracker.log_audio("valid/tts", wav[0], rate, self.step)
