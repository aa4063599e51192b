"""Configuration of the HierSpeech++ TTV: the model (official ``ttv_v1/config.json`` model block), data, training
and the experiment config that holds them (the family's one config module).

Only ``inter_channels`` and ``hidden_channels`` change the official network. The official file's other model
keys are, as in the official code, never read (the text encoder always uses 4*inter filter channels, 4 heads,
3+3 layers, kernel 9 and dropout 0.2): :func:`from_official_config` accepts and drops them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from models.base.experiment_config import experiment_config
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig
from utils.config import validate

# Keys of the official ``model`` block that the official TTV never reads: accepted from official files, dropped.
OFFICIAL_UNREAD_MODEL_KEYS = ("filter_channels", "n_heads", "n_layers", "kernel_size", "p_dropout", "resblock",
                              "resblock_kernel_sizes", "resblock_dilation_sizes", "use_spectral_norm")


@dataclass
class TTVConfig:
    inter_channels: int = 256  # latent / text-encoder width (divisible by 4: 4 attention heads)
    hidden_channels: int = 256  # posterior WaveNet and flow DiT width (divisible by 4)
    n_vocab: int = 178  # symbol table size (blank/pad id 0)
    ssl_channels: int = 1024  # MMS-300m feature size
    n_mel_channels: int = 80  # prosody-prompt log-mel bins
    gin_channels: int = 256  # style size (fixed by the official code)
    leaky_padding: bool = False  # True: official unmasked padding in flow attention and style pooling

    def __post_init__(self) -> None:
        if self.inter_channels % 4 != 0 or self.inter_channels <= 0:
            raise ValueError(f"inter_channels must be a positive multiple of 4 (4 heads), got {self.inter_channels}")
        if self.hidden_channels % 4 != 0 or self.hidden_channels <= 0:
            raise ValueError(f"hidden_channels must be a positive multiple of 4 (4 heads), got {self.hidden_channels}")
        if self.gin_channels != 256:
            raise ValueError(f"gin_channels is fixed to 256 by the TTV text encoder and pitch predictor, "
                             f"got {self.gin_channels}")


def from_official_config(model: Mapping[str, Any], **overrides: Any) -> TTVConfig:
    """TTV config from the official ``model`` block (``ttv_v1/config.json``), its unread keys dropped."""
    kept = {k: v for k, v in model.items() if k not in OFFICIAL_UNREAD_MODEL_KEYS}
    return validate({**kept, **overrides}, TTVConfig, "model")


@dataclass
class TTVDataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    features_dir: str = ""
    min_frames: int = 32
    max_frames: int = 600
    max_tokens: int = 200
    on_unknown: str = "warn"  # symbols outside the table: "warn" (drop) or "error"


@dataclass
class TTVTrainConfig(TrainConfig):
    c_w2v: float = 10.0  # official key c_mel
    c_kl: float = 0.1
    c_f0: float = 1.0
    c_dur: float = 1.0
    c_ctc: float = 1.0
    masked_w2v: bool = False
    batch_size: int = 32


@experiment_config("hierspeechpp_ttv", model=TTVConfig, data=TTVDataConfig, train=TTVTrainConfig)
class TTVExperimentConfig:
    """A HierSpeech++ text-to-vec experiment."""
