"""The toy TTS experiment config: model sizes, data, training and inference settings in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from models.base.sentence_tts import SentenceSettings
from models.base.trainer import TrainConfig
from models.example.toy_tts.model import ToyTTSConfig
from processors.features.audio import MelSettings


def _vits_mel() -> MelSettings:  # 22.05 kHz, hop 256: the frames of Piper / VITS voices' durations
    return MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, f_max=8000.0)


@dataclass
class ToyTTSDataConfig:
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    mel: MelSettings = field(default_factory=_vits_mel)
    max_seconds: float = 15.0  # longer rows are skipped (and listed)


@dataclass
class ToyTTSInferConfig(SentenceSettings):  # + max_sentence_chars, pause_seconds (long texts)
    seed: int = 0  # Griffin-Lim's initial phases
    pace: float = 1.0  # > 1 speaks slower
    griffin_lim_iters: int = 60
    griffin_lim_power: float = 1.2  # magnitude exponent before phase recovery (sharpens predicted spectra)


@dataclass
class ToyTTSExperimentConfig:
    model_type: str = "toy_tts"
    model: ToyTTSConfig = field(default_factory=ToyTTSConfig)
    data: ToyTTSDataConfig = field(default_factory=ToyTTSDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: ToyTTSInferConfig = field(default_factory=ToyTTSInferConfig)
