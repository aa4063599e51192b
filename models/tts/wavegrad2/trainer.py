"""WaveGrad 2 trainer on the shared BaseTrainer.

Per step: a continuous noise level per item (a step ``s ~ U{1..S}`` of the training schedule, then a level
uniformly inside ``[sqrt(abar_s), sqrt(abar_{s-1})]``), one window of ``model.window_frames`` frames inside each
item's valid frames, loss = L1(eps_pred, eps) + ``duration_loss_weight`` x duration MSE (+ the aligner's loss
when durations come from the internal aligner). Optimizer, schedule and batching come from the config
(``train.optimizers`` / ``train.schedulers`` / ``train.batching``; ``configs/paper.json5``: maum-ai's Adam 3e-4,
weight decay 1e-6, its per-step decay ``lr x 0.05 ** clip((step - 25k) / 75k, 0, 1)`` as the shared ``geometric``
schedule, duration-bucketed batches from the manifest's seconds). The aligner's log-mel front end is a frozen
component. ``train.grad_clip_norm`` clips. All draws use the global torch RNG, which every checkpoint saves, so
``--resume`` is exact.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from models.base.trainer import BaseTrainer
from models.tts.wavegrad2.config import WaveGrad2ExperimentConfig
from models.tts.wavegrad2.dataset import collate_wavegrad2, load_datasets
from models.tts.wavegrad2.model import WaveGrad2
from modules.diffusion import resolve_schedule, sample_training_noise_level
from processors.spectrogram import VitsMelSpectrogram
from utils.registry import register


def aligner_mel(sample_rate: int, hop_length: int, n_mels: int) -> VitsMelSpectrogram:
    """Log-mel at the model's frame rate (one frame per ``hop`` samples, window 4 hops) for the aligner."""
    return VitsMelSpectrogram(sample_rate, 4 * hop_length, hop_length, 4 * hop_length, n_mels)


@register("trainer", "wavegrad2")
class WaveGrad2Trainer(BaseTrainer):
    config_class = WaveGrad2ExperimentConfig

    def build_frozen(self):
        m = self.cfg.model
        if not m.aligner_mel_channels:
            return {}
        return {"mel": aligner_mel(m.sample_rate, m.hop_length, m.aligner_mel_channels)}

    def build_models(self):
        return {"model": WaveGrad2.from_config(self.cfg.model)}

    def build_datasets(self):
        m = self.cfg.model
        return load_datasets(self.cfg.data, m.sample_rate, m.hop_length, m.n_speakers)

    def collate(self, items):
        return collate_wavegrad2(items)

    def item_lengths(self, dataset):
        return dataset.lengths()

    # ------------------------------------------------------------------ steps
    def _forward(self, model: WaveGrad2, batch, noise_level: torch.Tensor, generator: Optional[torch.Generator] = None):
        mel = mel_lengths = None
        if batch["durations"] is None:
            mel_lengths = batch["wav_lengths"] // model.hop_length
            mel = self.frozen_modules["mel"](batch["wav"])[..., : int(mel_lengths.max())]
        sid = batch["sid"] if self.cfg.model.n_speakers > 0 else None
        out = model(batch["text"], batch["text_lengths"], batch["durations"], batch["wav"], noise_level,
                    speakers=sid, generator=generator, mel=mel, mel_lengths=mel_lengths)
        return out, model.losses(out)

    def _total(self, losses: Dict[str, torch.Tensor]) -> torch.Tensor:
        t = self.cfg.train
        total = losses["l1"] + t.duration_loss_weight * losses["duration"]
        if "aligner" in losses:
            total = total + t.aligner_loss_weight * losses["aligner"]
        return total

    def train_step(self, batch) -> Dict[str, torch.Tensor]:
        model: WaveGrad2 = self.unwrap("model")
        level = sample_training_noise_level(model.train_schedule, batch["text"].size(0)).to(self.device)
        _, losses = self._forward(self.models["model"], batch, level)
        loss = self._total(losses)
        self.optimize("model", loss)
        return {"loss": loss, **{f"loss_{k}": v for k, v in losses.items()}}

    @torch.no_grad()
    def valid_step(self, batch, index: int) -> Dict[str, float]:
        """Losses at fixed draws (a generator seeded per batch) and, for the first batch, a 6-step sample."""
        model: WaveGrad2 = self.unwrap("model")
        gen = torch.Generator().manual_seed(self.cfg.train.seed + index)
        level = sample_training_noise_level(model.train_schedule, batch["text"].size(0), gen).to(self.device)
        _, losses = self._forward(model, batch, level, generator=gen)
        if index == 0:
            sid = batch["sid"][:1] if self.cfg.model.n_speakers > 0 else None
            out = model.infer(batch["text"][:1], batch["text_lengths"][:1], resolve_schedule("fast_6"), speakers=sid,
                              generator=torch.Generator().manual_seed(self.cfg.train.seed))
            n = int(out["lengths"][0])
            self.tracker.log_audio("valid/tts_6steps", out["wav"][0:1, :n], self.cfg.model.sample_rate, self.step)
        return {f"loss_{k}": float(v) for k, v in losses.items()} | {"loss": float(self._total(losses))}
