"""Config schema of a HierSpeech++ synthesizer training experiment (validated by ``utils.config.validate``).

Sections: ``model`` (the synthesizer's own config, owned by the model code; its ``segment_frames`` is the
generator window in latent frames, 192 = 61,440 samples), ``data`` (front end, features,
perturbation), ``discriminator`` (MPD periods, MS-STFT resolutions) and ``train`` (shared trainer settings +
optimiser and loss weights of the released ``config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig
from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.losses import LossWeights
from processors.perturb import PerturbConfig


@dataclass
class SSLConfig:
    """Where SSL features come from when they are not precomputed."""

    model: str = "facebook/mms-300m"  # hub id or local directory (offline: a local copy)
    layer: int = 7
    # Tests/offline demos only: a randomly initialised tiny wav2vec2 (processors.ssl.build_random_ssl) of this
    # hidden size instead of ``model``; 0 = load ``model``. Its features are meaningless.
    random_tiny_dim: int = 0


@dataclass
class HierSpeechDataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    features_dir: Optional[str] = None
    sample_rate: int = 16000
    filter_length: int = 1280
    hop_length: int = 320
    win_length: int = 1280
    n_mel_channels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    max_frames: Optional[int] = 500  # encoders see at most this many frames of an utterance (10 s)
    min_frames: int = 32
    f0_method: Literal["yaapt", "dio", "harvest"] = "yaapt"
    f0_max: float = 800.0
    aug: bool = True
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    cache: bool = True


@dataclass
class DiscriminatorConfig:
    periods: List[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    # [n_fft, hop, win] per MS-STFT sub-discriminator (official DiscriminatorR resolutions)
    resolutions: List[List[int]] = field(
        default_factory=lambda: [[2048, 512, 2048], [1024, 256, 1024], [512, 128, 512], [256, 64, 256], [128, 32, 128]]
    )


@dataclass
class HierSpeechTrainConfig(TrainConfig, LossWeights):
    """Shared trainer settings (optimisers in ``optimizers`` / ``schedulers``) + the loss weights ``c_*``."""

    uncond_ratio: float = 0.1
    # Discriminator off for the first N steps (0 = adversarial from the start, as the released recipe).
    disc_start_step: int = 0


@dataclass
class HierSpeechExperimentConfig:
    model_type: str = "hierspeechpp"
    model: HierSpeechPPConfig = field(default_factory=HierSpeechPPConfig)
    data: HierSpeechDataConfig = field(default_factory=HierSpeechDataConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: HierSpeechTrainConfig = field(default_factory=HierSpeechTrainConfig)
