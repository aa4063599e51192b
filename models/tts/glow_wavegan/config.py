"""Config schemas of both Glow-WaveGAN stages.

* Stage 1, ``model_type: "glow_wavegan_vae"`` (:class:`WaveGANExperimentConfig`): waveform encoder + HiFi-GAN
  decoder + MPD/MSD, trained on audio only.
* Stage 2, ``model_type: "glow_wavegan"`` (:class:`GlowWaveGANExperimentConfig`): the Glow-TTS flow model
  (:class:`GlowTTSConfig`, official names) trained on latents of a frozen stage-1 checkpoint; its inference
  decodes with that checkpoint, so the stage-2 experiment is the TTS system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Literal, Optional

from models.base.experiment_config import experiment_config
from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig
from processors.spectrogram import MelConfig
from models.tts.glow_wavegan.acoustic_config import GlowTTSConfig


# ----------------------------------------------------------------------------------------------- stage 1
@dataclass
class WaveGANModelConfig:
    latent_channels: int = 128  # D (blueprint proposal; even so the stage-2 squeeze/couplings can split it)
    encoder_initial_channels: int = 32
    encoder_max_channels: int = 512
    context_frames: int = 4  # encoder context on each side of a training segment (frames), dropped before decoding
    # HiFi-GAN V1 decoder; the encoder mirrors its strides.
    upsample_rates: List[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])

    def __post_init__(self) -> None:
        if self.latent_channels < 1:
            raise ValueError(f"model.latent_channels must be positive, got {self.latent_channels}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("model.upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("model.resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.context_frames < 0:
            raise ValueError(f"model.context_frames must be >= 0, got {self.context_frames}")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)


@dataclass
class WaveGANDiscriminatorConfig:
    periods: List[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])  # HiFi-GAN MPD
    period_channels: List[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    msd_scales: int = 3  # HiFi-GAN MSD scales (0 = no MSD)


@dataclass
class AudioDataConfig(ShardedDataConfig, MelConfig):
    """Stage-1 training audio and its mel front end (the mel fields from :class:`MelConfig`)."""

    train_manifest: str = ""  # JSONL manifest (processors/data/manifest.py); text is not needed in stage 1
    valid_manifest: Optional[str] = None
    segment_samples: int = 8192  # decoded training segment in samples (a multiple of hop_length)
    max_valid_seconds: float = 10.0


@dataclass
class WaveGANTrainConfig(TrainConfig):
    # optimizers / schedulers: train.optimizers and train.schedulers (models/base/optim.py; configs/vae_base.json5)
    c_mel: float = 45.0
    c_fm: float = 1.0  # on top of the x2 inside feature_matching_loss (HiFi-GAN)
    c_kl: float = 1.0  # per-element mean KL to N(0, I) (see the README for the scale)
    adversarial_start_step: int = 0  # generator-only (mel + KL) steps before the discriminators join


@experiment_config("glow_wavegan_vae", model=WaveGANModelConfig, discriminator=WaveGANDiscriminatorConfig,
                   data=AudioDataConfig, train=WaveGANTrainConfig)
class WaveGANExperimentConfig:
    """The Glow-WaveGAN VAE (stage 1) experiment; checks hop and crop lengths agree."""

    def __post_init__(self) -> None:
        hop = self.model.hop_length
        if hop != self.data.hop_length:
            raise ValueError(f"product of model.upsample_rates ({hop}) != data.hop_length {self.data.hop_length}")
        if self.data.segment_samples % hop != 0:
            raise ValueError(f"data.segment_samples {self.data.segment_samples} is not a multiple of hop_length {hop}")
        if not self.discriminator.periods and self.discriminator.msd_scales <= 0:
            raise ValueError("discriminator: give at least one period or msd_scales > 0")


# ----------------------------------------------------------------------------------------------- stage 2
@dataclass
class LatentDataConfig(ShardedDataConfig):
    train_manifest: str = ""  # JSONL manifest with transcripts; ids name the latent files
    valid_manifest: Optional[str] = None
    features_dir: str = ""  # bins.extract_features --out_dir holding the glow_wavegan_latent feature of stage1_ckpt
    stage1_ckpt: str = ""  # stage-1 experiment/checkpoint dir: its latents are the target, its decoder the vocoder
    target: Literal["sample", "mean"] = "sample"  # fresh z ~ q(z|x) per step, or the posterior mean (ablation)
    add_blank: bool = True
    cleaned_text: bool = False
    min_text_len: int = 1
    max_text_len: int = 190
    speakers: List[str] = field(default_factory=list)  # name -> id for multi-speaker models


@dataclass
class GlowTrainConfig(TrainConfig):
    # optimizers / schedulers: train.optimizers and train.schedulers (models/base/optim.py); configs/base.json5
    # has glow-tts base.json's Adam(0.9, 0.98, eps 1e-9) and its Noam schedule (scale 1.0, 4000 warm-up steps).
    ddi: bool = True  # ActNorm data-dependent init on the first batch of a fresh run
    scheduler_interval: Literal["step", "epoch"] = "step"


@experiment_config("glow_wavegan", model=GlowTTSConfig, data=LatentDataConfig, train=GlowTrainConfig)
class GlowWaveGANExperimentConfig:
    """The Glow-WaveGAN acoustic (stage 2) experiment; checks the schedule interval and speakers."""

    def __post_init__(self) -> None:
        per_step = [name for name, sched in self.train.schedulers.items() if sched.type in ("noam", "inverse_sqrt")]
        if per_step and self.train.scheduler_interval != "step":
            raise ValueError(f"train.schedulers {per_step}: a Noam schedule counts optimizer steps; set "
                             "train.scheduler_interval to 'step'")
        if self.data.speakers and len(self.data.speakers) > max(self.model.n_speakers, 1):
            raise ValueError(f"data.speakers lists {len(self.data.speakers)} speakers but model.n_speakers is "
                             f"{self.model.n_speakers}")
