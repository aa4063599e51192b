"""The toy TTS experiment config: model sizes, data, training and inference settings in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from models.base.experiment_config import experiment_config
from models.base.sentence_tts import SentenceSettings
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig
from processors.spectrogram import MelConfig


@dataclass
class ToyTTSConfig:
    """Constructor arguments of :class:`ToyTTS`."""

    n_symbols: int = 178  # processors/text symbol table
    n_mels: int = 80
    hidden: int = 128
    ffn: int = 256
    heads: int = 2
    encoder_layers: int = 2
    decoder_layers: int = 2
    kernel_size: int = 3  # of the feed-forward convolutions
    duration_filter: int = 128
    dropout: float = 0.1
    aligner: bool = False  # learn durations (MAS on the log-mel) for rows without extra.durations


@dataclass
class ToyTTSDataConfig(ShardedDataConfig, MelConfig):  # + the mel front end (22.05 kHz, hop 256: the frames of Piper / VITS durations)
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    mel_fmax: Optional[float] = 8000.0
    max_seconds: float = 15.0  # longer rows are skipped (and listed)


@dataclass
class ToyTTSInferConfig(SentenceSettings):  # + max_sentence_chars, pause_seconds (long texts)
    seed: int = 0  # Griffin-Lim's initial phases
    length_scale: float = 1.0  # multiplies the predicted durations: > 1 speaks slower (checked: > 0)
    griffin_lim_iters: int = 60
    griffin_lim_power: float = 1.2  # magnitude exponent before phase recovery (sharpens predicted spectra)


@experiment_config("toy_tts", model=ToyTTSConfig, data=ToyTTSDataConfig, train=TrainConfig,
                   infer=ToyTTSInferConfig)
class ToyTTSExperimentConfig:
    """The toy TTS experiment; checks that model and data agree on the mel channels."""

    def __post_init__(self) -> None:
        if self.model.n_mels != self.data.n_mel_channels:
            raise ValueError(f"model.n_mels {self.model.n_mels} != data.n_mel_channels {self.data.n_mel_channels}")
