"""Configuration of the SpeechSR family (its one config module): the model section (:class:`SpeechSRModelConfig`,
the constructor arguments of :class:`models.sr.speechsr.model.SpeechSR`) and the training experiment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from models.base.experiment_config import experiment_config
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig


@dataclass
class SpeechSRModelConfig:
    target_rate: int = 48000
    upsample_initial_channel: int = 32
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])


@dataclass
class SpeechSRDataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    segment_samples: int = 9600  # target-rate samples


@dataclass
class SpeechSRDiscriminatorConfig:
    """Official by default (null = the released layout for the rate); smaller sets only for quick tests."""

    periods: Optional[List[int]] = None          # null -> [2, 3, 5, 7, 11]
    resolutions: Optional[List[List[int]]] = None  # null -> 5 (24 kHz) / 6 (48 kHz) STFT resolutions


@dataclass
class SpeechSRTrainConfig(TrainConfig):
    c_mel: float = 45.0
    batch_size: int = 32


@experiment_config("speechsr", model=SpeechSRModelConfig, data=SpeechSRDataConfig,
                   discriminator=SpeechSRDiscriminatorConfig, train=SpeechSRTrainConfig)
class SpeechSRExperimentConfig:
    """A SpeechSR experiment: generator, data, discriminators and training."""
