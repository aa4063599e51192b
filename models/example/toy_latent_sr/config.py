"""Configuration of the two-stage toy family (its one config module): the refiner's constructor arguments, the
model section (those plus the frozen stage 1) and the experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from models.base.experiment_config import experiment_config
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig


@dataclass
class LatentRefinerConfig:
    """Constructor arguments of :class:`models.example.toy_latent_sr.model.LatentRefiner`."""

    code_channels: int = 16  # must equal stage 1's model.channels
    hidden_channels: int = 32
    kernel_size: int = 5

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length convolutions), got {self.kernel_size}")


@dataclass
class LatentSRModelConfig(LatentRefinerConfig):
    """The ``model`` section: the refiner and the frozen stage 1 it refines the code of."""

    stage1_checkpoint: str = ""  # the trained toy_autoencoder (checkpoint or experiment dir), used frozen


@dataclass
class LatentSRDataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    sample_rate: int = 16000  # stage 1's rate and the output rate
    low_rate: int = 8000  # training inputs are band-limited to this rate


@experiment_config("toy_latent_sr", model=LatentSRModelConfig, data=LatentSRDataConfig, train=TrainConfig)
class LatentSRExperimentConfig:
    """The toy latent super-resolution experiment."""
