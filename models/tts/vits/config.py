"""Config schema of VITS: the model block (official ``configs/*.json`` names), data front end and training.

:class:`VITSConfig` holds the constructor arguments of :class:`models.tts.vits.model.VITS`; field names follow
the official ``model`` block, plus the sizes the official code passes positionally (``n_vocab``,
``spec_channels`` = filter_length // 2 + 1, ``segment_frames`` = the official train.segment_size // hop) and
``n_speakers``. :func:`from_official_config` converts an official ``config.json`` (``{"train", "data", "model"}``):
it alone knows the official names (``sampling_rate``, ``segment_size`` in samples, the unread ``n_layers_q``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from models.base.experiment_config import experiment_config
from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig
from processors.spectrogram import MelConfig


@dataclass
class VITSConfig:
    """Constructor arguments of the VITS synthesizer."""

    n_vocab: int = 178  # symbol table size (processors/text: 178 symbols)
    spec_channels: int = 513  # linear-spectrogram bins = filter_length // 2 + 1
    segment_frames: int = 32  # decoder training window in latent frames (8192 samples at hop 256)
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock: str = "1"
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    upsample_rates: List[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [16, 16, 4, 4])
    n_speakers: int = 0  # > 1: speaker embedding table ``emb_g`` (n_speakers, gin_channels)
    gin_channels: int = 0
    use_sdp: bool = True  # stochastic (True) or deterministic duration predictor
    use_spectral_norm: bool = False  # discriminator normalisation (read by the trainer)

    def __post_init__(self) -> None:
        if str(self.resblock) not in ("1", "2"):
            raise ValueError(f"model.resblock must be '1' or '2', got {self.resblock!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"model.upsample_rates {self.upsample_rates} and upsample_kernel_sizes "
                f"{self.upsample_kernel_sizes} differ in length"
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("model.resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.hidden_channels % self.n_heads != 0:
            raise ValueError(f"model.hidden_channels {self.hidden_channels} not divisible by n_heads {self.n_heads}")
        if self.inter_channels % 2 != 0:
            raise ValueError(f"model.inter_channels must be even (flow couplings split it), got {self.inter_channels}")
        if self.n_speakers > 1 and self.gin_channels <= 0:
            raise ValueError(f"model.n_speakers={self.n_speakers} needs gin_channels > 0")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)


@dataclass
class VITSDataConfig(ShardedDataConfig, MelConfig):
    """Front end (official ``data`` block names; the mel fields from :class:`MelConfig`) and where the training
    lists live."""

    train_manifest: str = ""  # JSONL/CSV manifest (see models/tts/vits/dataset.py)
    valid_manifest: Optional[str] = None
    add_blank: bool = True
    min_text_len: int = 1
    max_text_len: int = 190
    cleaned_text: bool = False  # True: manifest text is already phonemised
    speakers: List[str] = field(default_factory=list)  # speaker name -> id (index); empty = single speaker
    # "echelon": cleaners + espeak-ng -> the 178-symbol table (official VITS); "piper": espeak-ng -> the Piper
    # voice's phoneme_id_map (voices converted by models/tts/vits/piper.py)
    text_frontend: str = "echelon"
    phoneme_id_map: Dict[str, List[int]] = field(default_factory=dict)
    espeak_voice: str = "en-us"

    def __post_init__(self) -> None:
        if self.text_frontend not in ("echelon", "piper"):
            raise ValueError(f"data.text_frontend must be 'echelon' or 'piper', got {self.text_frontend!r}")
        if self.text_frontend == "piper" and not self.phoneme_id_map:
            raise ValueError("data.text_frontend 'piper' needs data.phoneme_id_map (from the voice's .onnx.json)")


@dataclass
class VITSTrainConfig(TrainConfig):
    segment_samples: int = 8192  # samples cut for the decoder / discriminator
    c_mel: float = 45.0
    c_kl: float = 1.0
    # Discriminator layout; the defaults are the official MultiPeriodDiscriminator (S + P2..P11). Smaller
    # settings only serve quick CPU runs and tests.
    disc_periods: List[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    disc_period_channels: List[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    disc_use_scale: bool = True


@experiment_config("vits", model=VITSConfig, data=VITSDataConfig, train=VITSTrainConfig)
class VITSExperimentConfig:
    """A VITS experiment; checks that model, data and training crops agree."""

    def __post_init__(self) -> None:
        d, m = self.data, self.model
        if m.spec_channels != d.filter_length // 2 + 1:
            raise ValueError(
                f"model.spec_channels {m.spec_channels} != data.filter_length // 2 + 1 = {d.filter_length // 2 + 1}"
            )
        if m.hop_length != d.hop_length:
            raise ValueError(f"product of model.upsample_rates ({m.hop_length}) != data.hop_length {d.hop_length}")
        if self.train.segment_samples != m.segment_frames * d.hop_length:
            raise ValueError(
                f"train.segment_samples {self.train.segment_samples} != model.segment_frames {m.segment_frames} x hop "
                f"{d.hop_length}"
            )
        if d.speakers and len(d.speakers) > max(m.n_speakers, 1):
            raise ValueError(f"data.speakers lists {len(d.speakers)} speakers but model.n_speakers is {m.n_speakers}")


_OFFICIAL_MODEL_KEYS = {
    "inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers", "kernel_size", "p_dropout",
    "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes", "upsample_rates", "upsample_initial_channel",
    "upsample_kernel_sizes", "use_spectral_norm", "gin_channels", "use_sdp",
}  # fmt: skip
# In the official model block but never read by the official model: accepted here, dropped.
_OFFICIAL_UNREAD_MODEL_KEYS = {"n_layers_q"}


# Official data-block names that differ from Echelon's. Official keys Echelon never reads are dropped by
# data_from_official_config: the file lists, ``text_cleaners`` (the front end is fixed by ``text_frontend``) and
# ``max_wav_value`` (int16 scaling; processors/audio already returns [-1, 1]).
_OFFICIAL_DATA_RENAMES = {"sampling_rate": "sample_rate"}


def data_from_official_config(official: Mapping[str, Any]) -> VITSDataConfig:
    """Front-end config from an official ``config.json`` dict; keys Echelon does not use (file lists) are dropped."""
    names = {f.name for f in dataclasses.fields(VITSDataConfig)} - {"speakers"}
    data = {_OFFICIAL_DATA_RENAMES.get(k, k): v for k, v in official["data"].items()}
    return VITSDataConfig(**{k: v for k, v in data.items() if k in names})


def from_official_config(official: Mapping[str, Any] | str | Path, n_vocab: int = 178) -> VITSConfig:
    """Model config from an official VITS ``config.json`` (dict or path): sizes from its data/train blocks."""
    if not isinstance(official, Mapping):
        path = Path(official)
        if not path.is_file():
            raise FileNotFoundError(f"official VITS config not found: {path}")
        official = json.loads(path.read_text(encoding="utf-8"))
    for section in ("model", "data", "train"):
        if section not in official:
            raise ValueError(f"official VITS config lacks its {section!r} block")
    model, data, train = official["model"], official["data"], official["train"]
    unknown = sorted(set(model) - _OFFICIAL_MODEL_KEYS - _OFFICIAL_UNREAD_MODEL_KEYS)
    if unknown:
        raise ValueError(f"official VITS config: unknown model keys {unknown}")
    return VITSConfig(
        n_vocab=n_vocab,
        spec_channels=data["filter_length"] // 2 + 1,
        segment_frames=train["segment_size"] // data["hop_length"],  # official: samples
        n_speakers=data.get("n_speakers", 0),
        **{k: v for k, v in model.items() if k not in _OFFICIAL_UNREAD_MODEL_KEYS},
    )
