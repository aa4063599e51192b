"""``hierspeechpp`` trainer: the reconstructed HierSpeech++ synthesizer training on the shared BaseTrainer.

Two models / two optimizers: ``generator`` (the full ``SynthesizerTrn``, official key names, so the
``generator.safetensors`` of a checkpoint is the official state_dict layout) and ``discriminator`` (MPD + MS-STFT).
Each step: generator forward (:func:`training_forward`) -> :func:`models.base.adversarial.adversarial_step`
(discriminator LSGAN step on the detached window, generator step with the discriminator frozen). The SSL model
(stopped at the feature layer, built on first use: only needed when SSL features were not precomputed) and the
spectrogram front ends are frozen components (``build_frozen``), not in the checkpointed models; meta.json
records where the SSL weights came from. Optimisers and schedules come from ``train.optimizers`` /
``train.schedulers``.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

import numpy as np
import torch
from torch import nn

from models.base.adversarial import adversarial_step
from models.base.frozen import FrozenComponent, pretrained_source
from models.base.shar_stream import cut_crop_rng
from models.base.trainer import BaseTrainer
from models.tts.hierspeechpp.dataset import HierSpeechTrainDataset, collate
from models.tts.hierspeechpp.losses import reconstruction_objective
from models.tts.hierspeechpp.config import HierSpeechExperimentConfig, SSLConfig
from models.tts.hierspeechpp.training import HierSpeechPPForTraining
from modules.discriminators import hierspeechpp_discriminator
from modules.losses import mel_l1_loss
from processors.data.shar_reader import cut_array, cut_audio
from processors.spectrogram import HierSpeechLinearSpectrogram, HierSpeechLogMel
from utils.registry import register


def log_f0_of(wav: np.ndarray, sample_rate: int, method: str, f0_max: float) -> np.ndarray:
    """ln(F0 + 1) at 200 Hz of a clip (picklable for data-loader workers)."""
    from processors.f0 import extract_f0, to_log_f0

    return to_log_f0(extract_f0(wav, sample_rate, method=method, f0_max=f0_max)).numpy()


def ssl_component(cfg: SSLConfig) -> FrozenComponent:
    """The frozen SSL feature model of ``data.ssl``, built on first use (stopped at ``cfg.layer``)."""
    from processors.ssl import SSLFeatureExtractor, build_random_ssl

    if cfg.random_tiny_dim > 0:
        def build() -> nn.Module:
            return build_random_ssl(layer=cfg.layer, num_layers=cfg.layer, hidden_size=cfg.random_tiny_dim)

        source = {"kind": "random", "note": f"tiny wav2vec2, {cfg.random_tiny_dim}-dim, seed 0 (tests only)"}
    else:
        def build() -> nn.Module:
            return SSLFeatureExtractor.from_pretrained(cfg.model, cfg.layer)

        source = pretrained_source(cfg.model)
    return FrozenComponent.lazy(build, {**source, "layer": cfg.layer})


@register("trainer", "hierspeechpp")
class HierSpeechTrainer(BaseTrainer):
    config_class = HierSpeechExperimentConfig

    # ------------------------------------------------------------------ construction
    def build_frozen(self) -> Dict[str, Any]:
        d = self.cfg.data
        return {
            "linear_spec": HierSpeechLinearSpectrogram(d.filter_length, d.win_length, d.hop_length),
            "log_mel": HierSpeechLogMel.from_config(d),
            "ssl": ssl_component(d.ssl),
        }

    def build_models(self) -> Dict[str, nn.Module]:
        disc = self.cfg.discriminator
        generator = HierSpeechPPForTraining.from_config(self.cfg.model)
        discriminator = hierspeechpp_discriminator(resolutions=[list(r) for r in disc.resolutions], periods=list(disc.periods))
        return {"generator": generator, "discriminator": discriminator}

    @property
    def linear_spec(self) -> nn.Module:
        return self.frozen_modules["linear_spec"]

    @property
    def log_mel(self) -> nn.Module:
        return self.frozen_modules["log_mel"]

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
        return self._dataset(d.train_manifest, train=True), self.build_valid_dataset()

    def collate(self, items):
        return collate(items, self.cfg.data.hop_length)

    def item_from_cut(self, cut) -> Dict[str, Any]:
        """A streamed cut (audio at data.sample_rate; f0, ssl, ssl_aug arrays when the shards hold them) -> the
        same item as the manifest dataset's, cropped with an RNG drawn from (seed, epoch, cut id)."""
        if not hasattr(self, "_shaper"):
            self._shaper = self._dataset(None, train=True)
        if cut.sampling_rate != self.cfg.data.sample_rate:
            raise ValueError(f"shard audio of {cut.id} is {cut.sampling_rate} Hz, data.sample_rate is "
                             f"{self.cfg.data.sample_rate}: write the shards with --audio_rate {self.cfg.data.sample_rate}")
        full = self._shaper.assemble(cut.id, cut_audio(cut), cut_array(cut, "f0"),
                                     {k: cut_array(cut, k) for k in ("ssl", "ssl_aug")})
        return self._shaper.crop(full, cut.id, cut_crop_rng(self.cfg.train.seed, self.epoch, cut.id))

    def build_valid_dataset(self):
        d = self.cfg.data
        return self._dataset(d.valid_manifest, train=False) if d.valid_manifest else None

    def item_lengths(self, dataset):
        return dataset.frame_lengths()

    # ------------------------------------------------------------------ features on the device
    @torch.no_grad()
    def _ssl_features(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SSL of (B, 1, hop·T) audio with the official padding (1280-multiple + 40 reflect) per item -> (B, C, T)."""
        from processors.ssl import official_ssl_input

        hop, frames = self.cfg.data.hop_length, audio.size(-1) // self.cfg.data.hop_length
        rows = [official_ssl_input(audio[b : b + 1, 0, : int(n) * hop]) for b, n in enumerate(lengths)]
        width = max(r.size(-1) for r in rows)
        padded = torch.cat([nn.functional.pad(r, (0, width - r.size(-1))) for r in rows])
        sizes = torch.tensor([r.size(-1) for r in rows], device=audio.device)
        feats, _ = self.frozen_modules["ssl"](padded, sizes)
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
            segment_frames=self.cfg.model.segment_frames,
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
        losses = adversarial_step(
            self, out["audio_slice"], out["audio_hat"], {"loss_recon": reconstruction_objective(terms, t)},
            adv_weight=t.c_adv, fm_weight=t.c_fm, use_discriminator=self.step >= t.disc_start_step,
        )  # fmt: skip
        return {**{k: v.detach() for k, v in terms.items()}, **losses}

    @torch.no_grad()
    def valid_step(self, batch: Dict[str, Any], index: int) -> Dict[str, float]:
        out = self.generator_forward(batch, uncond_ratio=0.0)
        if index == 0:
            self.tracker.log_audio("valid/recon", out["audio_hat"][0, 0], self.cfg.data.sample_rate, self.step)
        return {k: float(out[k]) for k in ("mel", "f0", "prosody", "kl_a", "kl_s")}
