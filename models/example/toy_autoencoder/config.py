"""Configuration of the toy autoencoder family (its one config module): the model section and the experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from models.base.experiment_config import experiment_config
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig


@dataclass
class ToyAutoencoderConfig:
    channels: int = 16
    kernel_size: int = 16
    stride: int = 8


@dataclass
class ToyDataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    sample_rate: int = 16000
    segment: int = 4000


@experiment_config("toy_autoencoder", model=ToyAutoencoderConfig, data=ToyDataConfig, train=TrainConfig)
class ToyExperimentConfig:
    """The toy autoencoder experiment (configs under ``models/example/toy_autoencoder``)."""
