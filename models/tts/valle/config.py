"""Typed configuration of VALL-E (model sizes, decoding) — every size of the network comes from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional

from models.base.experiment_config import experiment_config
from models.base.optim import OptimizerConfig, SchedulerConfig
from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig


@dataclass
class ValleModelConfig:
    """Constructor values of the reference ``VALLE`` (defaults: the released full-size model)."""

    d_model: int = 1024
    nhead: int = 16
    num_layers: int = 12
    num_quantizers: int = 8
    num_text_tokens: int = 512
    num_audio_tokens: int = 1024  # codebook size; EOS = audio padding id = this value
    norm_first: bool = True
    share_embedding: bool = True  # tie nar_predict_layers[j] to nar_audio_embeddings[j+2]
    prepend_bos: bool = False  # AR audio BOS (id num_audio_tokens + 1); changes the AR embedding rows
    prefix_mode: int = 1  # NAR acoustic prompt during training: 0 none, 1 prefix of the same utterance
    nar_scale_factor: float = 1.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.prefix_mode not in (0, 1):
            raise ValueError(f"model.prefix_mode={self.prefix_mode}: only 0 and 1 are implemented (see README)")
        for name in ("d_model", "nhead", "num_layers", "num_quantizers", "num_text_tokens", "num_audio_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ValleDecodingConfig:
    """AR sampling and stopping (reference CLI defaults: no top-k, temperature 1, 16 frames per text token)."""

    top_k: int = -100  # <= 0: no top-k filtering; 1: greedy (argmax)
    top_p: float = 1.0
    temperature: float = 1.0
    max_frames_per_token: int = 16  # length cap: stop once generated > this * text length (prompt's included)
    stop_on_argmax_eos: bool = True  # reference rule: stop when argmax is EOS even if the sample is not
    use_kv_cache: bool = True


@dataclass
class ValleDataConfig(ShardedDataConfig):
    """Manifests (processors.data.manifest JSONL) and the features written by :mod:`models.tts.valle.prepare`."""

    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    features_dir: str = ""  # holds encodec_codes/<id>.pt (int16 (Q, frames)) and phonemes.jsonl
    symbols: List[str] = field(default_factory=list)  # the model's text symbol table (<pad>, <bos>, <eos>, ...)
    language: str = "en-us"
    codec: str = "facebook/encodec_24khz"  # or a local folder, or "tiny-random" (tests only)
    codec_bandwidth: float = 6.0
    min_frames: int = 8
    max_frames: int = 1050  # 14 s at 75 Hz (the references filter 0.5-14 s)


def _default_optimizers() -> Dict[str, OptimizerConfig]:
    return {"default": OptimizerConfig(type="adamw", lr=1e-4, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.01)}


def _default_schedulers() -> Dict[str, SchedulerConfig]:
    return {"default": SchedulerConfig(type="cosine", warmup_steps=16000)}


@dataclass
class ValleTrainConfig(TrainConfig):
    """Amphion's recipe by default: AdamW 1e-4, betas (0.9, 0.95), weight decay 0.01, linear warm-up over 16k
    optimizer steps then cosine decay to 0 at ``max_steps`` (``train.optimizers`` / ``train.schedulers``, see
    :mod:`models.base.optim`); losses are divided by the batch's frames."""

    train_stage: int = 0  # 0: AR and NAR jointly (loss = mean of the two), 1: AR only, 2: NAR only
    max_prefix_frames: int = 225  # prefix mode 1: the NAR prompt is at most 3 s
    valid_audio: bool = True  # log one generated validation clip (decoded by the frozen codec) per validation
    optimizers: Dict[str, OptimizerConfig] = field(default_factory=_default_optimizers)
    schedulers: Dict[str, SchedulerConfig] = field(default_factory=_default_schedulers)
    scheduler_interval: Literal["step", "epoch"] = "step"

    def __post_init__(self) -> None:
        if self.train_stage not in (0, 1, 2):
            raise ValueError(f"train.train_stage must be 0, 1 or 2, got {self.train_stage}")


@experiment_config("valle", model=ValleModelConfig, data=ValleDataConfig, train=ValleTrainConfig,
                   decoding=ValleDecodingConfig)
class ValleExperimentConfig:
    """A VALL-E experiment: model, data, training and decoding."""
