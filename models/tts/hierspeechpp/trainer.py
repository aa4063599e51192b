"""``hierspeechpp`` trainer: the reconstructed HierSpeech++ synthesizer training on the shared BaseTrainer.

Two models / two optimizers: ``generator`` (the full ``SynthesizerTrn``, official key names, so the
``generator.safetensors`` of a checkpoint is the official state_dict layout) and ``discriminator`` (MPD + MS-STFT).
Each step: generator forward (:func:`training_forward`) -> discriminator LSGAN step on the detached window ->
generator step with the discriminator frozen. The SSL model (frozen, stopped at the feature layer) and the
spectrogram front ends live on the trainer, not in the checkpointed models.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from models.base.trainer import BaseTrainer
from models.tts.hierspeechpp.dataset import HierSpeechTrainDataset, collate
from models.tts.hierspeechpp.losses import discriminator_objective, generator_objective
from models.tts.hierspeechpp.train_config import HierSpeechExperimentConfig
from models.tts.hierspeechpp.training import HierSpeechPPForTraining
from modules.discriminators import hierspeechpp_discriminator
from modules.losses import mel_l1_loss
from processors.spectrogram import HierSpeechLinearSpectrogram, HierSpeechLogMel
from utils.registry import register


def log_f0_of(wav: np.ndarray, sample_rate: int, method: str, f0_max: float) -> np.ndarray:
    """ln(F0 + 1) at 200 Hz of a clip (picklable for data-loader workers)."""
    from processors.f0 import extract_f0, to_log_f0

    return to_log_f0(extract_f0(wav, sample_rate, method=method, f0_max=f0_max)).numpy()


@register("trainer", "hierspeechpp")
class HierSpeechTrainer(BaseTrainer):
    config_class = HierSpeechExperimentConfig

    # ------------------------------------------------------------------ construction
    def build_models(self) -> Dict[str, nn.Module]:
        d, disc = self.cfg.data, self.cfg.discriminator
        generator = HierSpeechPPForTraining.from_config(self.cfg.model)
        discriminator = hierspeechpp_discriminator(resolutions=[list(r) for r in disc.resolutions], periods=list(disc.periods))
        self.linear_spec = HierSpeechLinearSpectrogram(d.filter_length, d.win_length, d.hop_length).to(self.device)
        self.log_mel = HierSpeechLogMel(
            d.sample_rate, d.filter_length, d.win_length, d.hop_length, d.mel_fmin, d.mel_fmax, d.n_mel_channels
        ).to(self.device)
        self._ssl: Optional[nn.Module] = None
        return {"generator": generator, "discriminator": discriminator}

    def build_optimizers(self, models):
        t = self.cfg.train
        return {
            name: torch.optim.AdamW(
                models[name].parameters(), lr=t.learning_rate, betas=tuple(t.betas), eps=t.eps, weight_decay=t.weight_decay
            )
            for name in ("generator", "discriminator")
        }

    def build_schedulers(self, optimizers):
        return {n: torch.optim.lr_scheduler.ExponentialLR(o, gamma=self.cfg.train.lr_decay) for n, o in optimizers.items()}

    def _dataset(self, manifest: str, train: bool) -> HierSpeechTrainDataset:
        d = self.cfg.data
        return HierSpeechTrainDataset(
            manifest,
            sample_rate=d.sample_rate,
            hop_length=d.hop_length,
            max_frames=d.max_frames,
            min_frames=d.min_frames,
            features_dir=d.features_dir,
            f0_fn=functools.partial(log_f0_of, sample_rate=d.sample_rate, method=d.f0_method, f0_max=d.f0_max),
            perturb_audio=d.aug,
            perturb_config=d.perturb,
            seed=self.cfg.train.seed,
            random_crop=train,
            cache=d.cache,
        )

    def build_datasets(self):
        d = self.cfg.data
        if not d.train_manifest:
            raise ValueError("data.train_manifest is empty: give the JSONL manifest to train on")
        valid = self._dataset(d.valid_manifest, train=False) if d.valid_manifest else None
        return self._dataset(d.train_manifest, train=True), valid

    def collate(self, items):
        return collate(items, self.cfg.data.hop_length)

    def item_lengths(self, dataset):
        return dataset.frame_lengths()

    # ------------------------------------------------------------------ features on the device
    @property
    def ssl(self) -> nn.Module:
        if self._ssl is None:
            from models.tts.hierspeechpp.inference import VoiceConverter

            cfg = self.cfg.data.ssl
            self._ssl = VoiceConverter.build_ssl(cfg.model, cfg.layer, cfg.random_tiny_dim).to(self.device).eval()
        return self._ssl

    @torch.no_grad()
    def _ssl_features(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SSL of (B, 1, hop·T) audio with the official padding (1280-multiple + 40 reflect) per item -> (B, C, T)."""
        from processors.ssl import official_ssl_input

        hop, frames = self.cfg.data.hop_length, audio.size(-1) // self.cfg.data.hop_length
        rows = [official_ssl_input(audio[b : b + 1, 0, : int(n) * hop]) for b, n in enumerate(lengths)]
        width = max(r.size(-1) for r in rows)
        padded = torch.cat([nn.functional.pad(r, (0, width - r.size(-1))) for r in rows])
        sizes = torch.tensor([r.size(-1) for r in rows], device=audio.device)
        feats, _ = self.ssl(padded, sizes)
        if feats.size(-1) < frames:
            feats = nn.functional.pad(feats, (0, frames - feats.size(-1)))
        return feats[..., :frames]

    def features(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        """Spectrograms (and SSL when not precomputed) of a collated batch, all (B, C, T)."""
        audio, lengths = batch["audio"], batch["lengths"]
        samples = lengths * self.cfg.data.hop_length
        linear, _ = self.linear_spec(audio.squeeze(1), samples)
        mel, _ = self.log_mel(audio.squeeze(1), samples)
        ssl = batch["ssl"] if "ssl" in batch else self._ssl_features(audio, lengths)
        if "ssl_aug" in batch:
            ssl_aug = batch["ssl_aug"]
        elif "audio_aug" in batch:
            ssl_aug = self._ssl_features(batch["audio_aug"], lengths)
        else:  # data.aug off: both paths see the clean audio (ablation "no perturbation")
            ssl_aug = ssl
        return {"linear": linear, "mel": mel, "ssl": ssl, "ssl_aug": ssl_aug}

    # ------------------------------------------------------------------ steps
    def generator_forward(self, batch: Dict[str, Any], uncond_ratio: float):
        feats = self.features(batch)
        out = self.models["generator"](
            audio=batch["audio"],
            log_f0=batch["log_f0"],
            lengths=batch["lengths"],
            segment_frames=self.cfg.model.segment_size,
            hop_length=self.cfg.data.hop_length,
            prosody_size=self.cfg.model.prosody_size,
            uncond_ratio=uncond_ratio,
            **feats,
        )
        out["mel"] = mel_l1_loss(self.log_mel(out["audio_slice"].squeeze(1)), self.log_mel(out["audio_hat"].squeeze(1)))
        return out

    def train_step(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        t = self.cfg.train
        out = self.generator_forward(batch, t.uncond_ratio)
        terms = {k: out[k] for k in ("mel", "kl_a", "kl_a_rev", "kl_s", "kl_s_rev", "f0", "prosody")}
        disc = self.models["discriminator"]
        adversarial = self.step >= t.disc_start_step
        values: Dict[str, Any] = {}
        if adversarial:
            real, fake, _, _ = disc(out["audio_slice"], out["audio_hat"].detach())
            loss_d = discriminator_objective(real, fake)
            self.optimize("discriminator", loss_d)
            values["disc"] = loss_d.detach()
            with self.frozen("discriminator"):
                _, fake, fmap_real, fmap_fake = disc(out["audio_slice"], out["audio_hat"])
                gen = generator_objective(terms, fake, fmap_real, fmap_fake, self.cfg.train)
        else:
            gen = generator_objective(terms, [], [], [], self.cfg.train)
        self.optimize("generator", gen["loss"])
        values.update({k: v.detach() for k, v in gen.items()})
        return values

    @torch.no_grad()
    def valid_step(self, batch: Dict[str, Any], index: int) -> Dict[str, float]:
        out = self.generator_forward(batch, uncond_ratio=0.0)
        if index == 0:
            self.tracker.log_audio("valid/recon", out["audio_hat"][0, 0], self.cfg.data.sample_rate, self.step)
        return {k: float(out[k]) for k in ("mel", "f0", "prosody", "kl_a", "kl_s")}
