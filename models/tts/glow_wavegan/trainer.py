"""Stage-2 trainer (``model_type: "glow_wavegan"``): Glow-TTS on latents of the frozen stage-1 encoder.

Per step the target is a fresh sample ``z = mean + exp(log_std) * eps`` of the stored posterior (``data.target:
"sample"``; ``"mean"`` uses the posterior mean), so the flow learns the distribution the stage-1 decoder was
trained on.  Loss = Glow-TTS ``mle_loss`` + ``duration_loss``.  A fresh run starts with the ActNorm
data-dependent init on its first batch (``train.ddi``; glow-tts runs it as a separate pass).
Optimiser: Adam(0.9, 0.98, eps 1e-9) with the Noam schedule ``lr * d^-0.5 * min(n^-0.5, n * warmup^-1.5)``
(``n`` = optimizer step from 1, ``d`` = encoder width), as glow-tts ``commons.Adam``; ``scheduler: "constant"``
keeps ``lr`` fixed (tiny CPU runs).  glow-tts clips gradient values at 5; here ``train.grad_clip_norm`` applies.
"""

from __future__ import annotations

from typing import Dict

import torch

from models.base.trainer import BaseTrainer
from models.tts.glow_wavegan.acoustic import GlowTTS
from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig
from models.tts.glow_wavegan.dataset import collate_latents, load_latent_datasets
from modules.commons import sequence_mask
from utils.registry import register


def noam_factor(step_index: int, d_model: int, warmup_steps: int) -> float:
    """Noam multiplier for the ``step_index``-th optimizer step (0-based, as LambdaLR counts)."""
    n = step_index + 1
    return d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)


@register("trainer", "glow_wavegan")
class GlowWaveGANTrainer(BaseTrainer):
    config_class = GlowWaveGANExperimentConfig

    def build_models(self):
        self._ddi_pending = self.cfg.train.ddi
        return {"acoustic": GlowTTS.from_config(self.cfg.model)}

    def build_optimizers(self, models):
        t = self.cfg.train
        return {"acoustic": torch.optim.Adam(models["acoustic"].parameters(), t.learning_rate, betas=tuple(t.betas),
                                             eps=t.eps)}

    def build_schedulers(self, optimizers):
        t = self.cfg.train
        if t.scheduler == "constant":
            return {}
        d_model = self.cfg.model.encoder_channels
        return {"acoustic": torch.optim.lr_scheduler.LambdaLR(
            optimizers["acoustic"], lambda i: noam_factor(i, d_model, t.warmup_steps))}

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
        """Both losses on the posterior means (deterministic), in eval mode."""
        model: GlowTTS = self.unwrap("acoustic")
        mask = sequence_mask(batch["latent_lengths"], batch["mean"].size(-1)).unsqueeze(1).to(batch["mean"].dtype)
        out = model(batch["text"], batch["text_lengths"], batch["mean"] * mask, batch["latent_lengths"],
                    sid=self._sid(batch))
        loss_mle, loss_dur = GlowTTS.losses(out, batch["text_lengths"])
        return {"loss_mle": float(loss_mle), "loss_dur": float(loss_dur)}
