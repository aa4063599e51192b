"""Configuration of the HierSpeech++ synthesizer family (its one config module).

* ``model`` (:class:`HierSpeechPPConfig`): field names follow the ``model`` block of the official
  ``config.json``; :func:`from_official_config` converts a released config (it alone accepts, and drops, the
  official keys the model never reads; see README.md for the full list of quirks). Its ``segment_frames`` is the
  generator window in latent frames (192 = 61,440 samples).
* the training experiment (:class:`HierSpeechExperimentConfig`): ``data`` (mel front end, features,
  perturbation), ``discriminator`` (MPD periods, MS-STFT resolutions) and ``train`` (shared trainer settings +
  optimiser and loss weights of the released ``config.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Literal, Mapping, Optional

from models.base.experiment_config import experiment_config
from models.base.shar_stream import ShardedDataConfig
from models.base.trainer import TrainConfig
from models.tts.hierspeechpp.losses import LossWeights
from processors.perturb import PerturbConfig
from processors.spectrogram import MelConfig
from utils.config import ConfigError, validate

# Keys of the official ``data`` block that determine the model's input sizes.
_OFFICIAL_SPEC_KEY = "filter_length"
_OFFICIAL_HOP_KEY = "hop_length"
# In the official ``model`` block, never read by the official synthesizer (its text/mel blocks hard-code these,
# the SSL layer is the extractor's business): accepted by :func:`from_official_config` and dropped.
OFFICIAL_UNREAD_MODEL_KEYS = ("n_heads", "n_layers", "kernel_size", "p_dropout", "resblock", "n_layers_q",
                              "use_spectral_norm", "wav2vec_feature_layer")


@dataclass
class HierSpeechPPConfig:
    """Constructor arguments of :class:`models.tts.hierspeechpp.model.HierSpeechPPSynthesizer`."""

    inter_channels: int = 192  # latent channels; the source network's input (must stay 192 for official ckpts)
    hidden_channels: int = 192  # WaveNet / DiT width
    filter_channels: int = 768  # mel-decoder FFN width
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    upsample_rates: List[int] = field(default_factory=lambda: [4, 5, 4, 2, 2])  # first 4, product = hop
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [8, 11, 8, 4, 4])
    gin_channels: int = 256  # style dim
    cfg: bool = True  # CFG null-style embedding ``emb`` (present in the released checkpoints)
    uncond_ratio: float = 0.1  # training only: probability of replacing the style by the null style
    prosody_size: int = 20  # mel bins predicted by the prosody decoder
    spec_channels: int = 641  # linear-spectrogram bins (n_fft // 2 + 1) of the acoustic encoder
    segment_frames: int = 192  # training window in latent frames (61,440 samples at hop 320)
    ssl_channels: int = 1024  # SSL feature dim (MMS-300m)
    n_mel_channels: int = 80  # style-encoder input bins
    leaky_padding: bool = False  # True: official unmasked padding behaviour (parity with batched official runs)

    def __post_init__(self) -> None:
        rates = list(self.upsample_rates)
        if not rates or rates[0] != 4:
            raise ValueError(f"upsample_rates must start with 4, got {rates}")
        if len(rates) != len(self.upsample_kernel_sizes):
            raise ValueError(f"upsample_rates {rates} and upsample_kernel_sizes {list(self.upsample_kernel_sizes)} "
                             "differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.upsample_initial_channel % max(8, 2 ** len(rates)) != 0:
            raise ValueError(f"upsample_initial_channel {self.upsample_initial_channel} must be divisible by 8 "
                             f"and by 2**{len(rates)}")
        if self.hidden_channels % 2 != 0 or self.inter_channels % 2 != 0:
            raise ValueError("hidden_channels and inter_channels must be even")

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


def from_official_config(official: Mapping[str, Any]) -> HierSpeechPPConfig:
    """Build a config from an official ``config.json`` dict (``{"train", "data", "model"}``) or its model block.

    ``spec_channels`` = filter_length // 2 + 1 and ``segment_frames`` = train.segment_size (samples) // hop_length,
    as the official scripts pass them to the constructor; the official keys the model never reads are dropped.
    """
    model = {k: v for k, v in official.get("model", official).items() if k not in OFFICIAL_UNREAD_MODEL_KEYS}
    data = official.get("data", {})
    train = official.get("train", {})
    if _OFFICIAL_SPEC_KEY in data:
        model.setdefault("spec_channels", int(data[_OFFICIAL_SPEC_KEY]) // 2 + 1)
    if "segment_size" in train and _OFFICIAL_HOP_KEY in data:
        model.setdefault("segment_frames", int(train["segment_size"]) // int(data[_OFFICIAL_HOP_KEY]))
    if "n_mel_channels" in data:
        model.setdefault("n_mel_channels", int(data["n_mel_channels"]))
    return validate(model, HierSpeechPPConfig, path="model")


def load_official_config(path: str | Path) -> HierSpeechPPConfig:
    """Read an official ``config.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"official config not found: {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
    return from_official_config(raw)


# ----------------------------------------------------------------------------------------------- experiment
@dataclass
class SSLConfig:
    """Where SSL features come from when they are not precomputed."""

    model: str = "facebook/mms-300m"  # hub id or local directory (offline: a local copy)
    layer: int = 7
    # Tests/offline demos only: a randomly initialised tiny wav2vec2 (processors.ssl.build_random_ssl) of this
    # hidden size instead of ``model``; 0 = load ``model``. Its features are meaningless.
    random_tiny_dim: int = 0


@dataclass
class HierSpeechDataConfig(ShardedDataConfig, MelConfig):
    """Training data; the mel fields of :class:`MelConfig` with the official 16 kHz values."""

    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    features_dir: Optional[str] = None
    sample_rate: int = 16000
    filter_length: int = 1280
    hop_length: int = 320
    win_length: int = 1280
    mel_fmax: Optional[float] = 8000.0
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


@experiment_config("hierspeechpp", model=HierSpeechPPConfig, data=HierSpeechDataConfig,
                   discriminator=DiscriminatorConfig, train=HierSpeechTrainConfig)
class HierSpeechExperimentConfig:
    """A HierSpeech++ VC experiment: model, data, discriminators and training."""
