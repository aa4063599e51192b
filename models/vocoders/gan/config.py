"""Config schema of a standalone GAN mel vocoder (``model_type: "gan_vocoder"``).

``model.generator.type`` picks the generator from modules/vocoders: ``hifigan`` (:class:`HiFiGANGenerator`, the
original HiFi-GAN with weight-normed ``conv_pre``/``conv_post``) or ``bigvgan`` (:class:`AMPGenerator`, the
anti-aliased Snake generator of HierSpeech++/SpeechSR).  ``model.discriminator`` combines MPD periods with the
multi-scale (MSD) and/or multi-resolution STFT (MS-STFT) discriminators of modules/discriminators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Literal, Optional

from models.base.experiment_config import experiment_config
from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig
from processors.spectrogram import MelConfig


@dataclass
class GeneratorConfig:
    type: Literal["hifigan", "bigvgan"] = "hifigan"
    upsample_rates: List[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock: str = "1"  # hifigan only: "1" or "2"
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    activation: Literal["snakebeta", "snake"] = "snakebeta"  # bigvgan only

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)


@dataclass
class VocoderDiscriminatorConfig:
    periods: List[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    period_channels: List[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    msd: bool = True  # HiFi-GAN multi-scale discriminator (3 scales)
    stft_resolutions: List[List[int]] = field(default_factory=list)  # [n_fft, hop, win] per MS-STFT resolution


@dataclass
class VocoderModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: VocoderDiscriminatorConfig = field(default_factory=VocoderDiscriminatorConfig)


@dataclass
class VocoderDataConfig(ShardedDataConfig, MelConfig):
    """Training audio and its mel front end (the mel fields from :class:`MelConfig`)."""

    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    segment_samples: int = 8192  # training crop in samples (a multiple of hop_length)
    max_valid_seconds: float = 10.0  # validation clips are cut to this length


@dataclass
class VocoderTrainConfig(TrainConfig):
    c_mel: float = 45.0
    c_fm: float = 1.0  # multiplies the feature-matching loss (itself x2 as in HiFi-GAN)


@experiment_config("gan_vocoder", model=VocoderModelConfig, data=VocoderDataConfig, train=VocoderTrainConfig)
class VocoderExperimentConfig:
    """A GAN vocoder experiment; checks hop, crop and discriminator settings agree."""

    def __post_init__(self) -> None:
        hop = self.model.generator.hop_length
        if hop != self.data.hop_length:
            raise ValueError(f"product of model.generator.upsample_rates ({hop}) != data.hop_length {self.data.hop_length}")
        if self.data.segment_samples % hop != 0:
            raise ValueError(f"data.segment_samples {self.data.segment_samples} is not a multiple of hop_length {hop}")
        d = self.model.discriminator
        if not d.periods and not d.msd and not d.stft_resolutions:
            raise ValueError("model.discriminator: enable at least one of periods, msd, stft_resolutions")
