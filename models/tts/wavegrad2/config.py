"""Config schema of WaveGrad 2: model sizes, data front end, training and inference settings.

:class:`WaveGrad2Config` holds the constructor arguments of :class:`models.tts.wavegrad2.model.WaveGrad2`.
:func:`from_maum_config` converts the ``hparameter.yaml`` dict of maum-ai/wavegrad2 (as stored in the parity
fixtures) into it, with the maum-compatible switches (durations in seconds, frame origin 0, no zoneout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Literal, Mapping, Optional

from models.base.experiment_config import experiment_config
from models.base.sentence_tts import SentenceSettings
from models.base.trainer import TrainConfig
from models.base.shar_stream import ShardedDataConfig
from modules.diffusion import preset_names


@dataclass
class WaveGrad2Config:
    """Constructor arguments of the WaveGrad 2 model (paper defaults: 24 kHz, hop 300, base decoder)."""

    n_symbols: int = 178  # processors/text symbol table
    # Tacotron-2 encoder
    encoder_channels: int = 512
    encoder_kernel: int = 5
    encoder_depth: int = 3
    encoder_dropout: float = 0.5
    encoder_zoneout: float = 0.1  # paper: zoneout LSTM; 0 = plain LSTM (maum-ai)
    encoder_mask_padding: bool = True  # zero padding before each conv (maum-ai: False, padding leaks in)
    # speakers: 0 = single speaker; else an embedding concatenated to every encoder output (maum-ai)
    n_speakers: int = 0
    speaker_channels: int = 64
    # duration / range predictors and Gaussian upsampling
    duration_lstm_channels: int = 512
    range_lstm_channels: int = 512
    duration_unit: Literal["log_frames", "seconds"] = "log_frames"  # predictor target (maum-ai: seconds)
    frame_offset: float = 0.0  # index of the first frame in Gaussian upsampling (0 = maum-ai, 1 = keonlee)
    # zero the upsampled frames past each item's length and leave a short item's padded window samples out of
    # the loss (maum-ai does neither: its padded windows pair Gaussian tails with silence; off for parity)
    mask_padded_frames: bool = True
    sample_rate: int = 24000
    aligner_mel_channels: int = 0  # > 0: internal MAS aligner on log-mels of this size (durations = "aligner")
    window_frames: int = 64  # training window (0.8 s at 80 Hz; the paper's other setting is 256)
    # WaveGrad decoder
    factors: List[int] = field(default_factory=lambda: [5, 5, 3, 2, 2])
    up_preconv_channels: int = 768
    up_channels: List[int] = field(default_factory=lambda: [512, 512, 256, 128, 128])
    up_dilations: List[List[int]] = field(
        default_factory=lambda: [[1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 1, 2], [1, 2, 1, 2]])
    down_preconv_channels: int = 32
    down_channels: List[int] = field(default_factory=lambda: [128, 128, 256, 512])
    down_dilations: List[List[int]] = field(default_factory=lambda: [[1, 2, 4]] * 4)
    blocks_per_stage: int = 1  # 2 = maum-ai "large" decoder
    pos_emb_scale: float = 5000.0
    # diffusion (training): a preset name of modules/diffusion.py or explicit betas
    train_schedule: str = "linear_1000"
    train_betas: Optional[List[float]] = None

    def __post_init__(self) -> None:
        n = len(self.factors)
        if len(self.up_channels) != n or len(self.up_dilations) != n:
            raise ValueError(f"model.up_channels/up_dilations need one entry per factor ({n})")
        if len(self.down_channels) != n - 1 or len(self.down_dilations) != n - 1:
            raise ValueError(f"model.down_channels/down_dilations need {n - 1} entries (factors[1:])")
        if self.encoder_channels % 2:
            raise ValueError(f"model.encoder_channels must be even (BiLSTM halves), got {self.encoder_channels}")
        if self.n_speakers > 0 and self.speaker_channels <= 0:
            raise ValueError("model.n_speakers > 0 needs speaker_channels > 0")

    @property
    def hop_length(self) -> int:
        return math.prod(self.factors)

    @property
    def cond_channels(self) -> int:
        return self.encoder_channels + (self.speaker_channels if self.n_speakers > 0 else 0)


@dataclass
class WaveGrad2DataConfig(ShardedDataConfig):
    train_manifest: str = ""
    valid_manifest: Optional[str] = None
    # where durations come from: the manifest's ``extra.durations`` (frames per symbol), or an internal aligner
    durations: Literal["manifest", "aligner"] = "manifest"
    add_blank: bool = False  # WaveGrad 2 has no blank tokens
    speakers: List[str] = field(default_factory=list)
    max_seconds: float = 20.0


@dataclass
class WaveGrad2TrainConfig(TrainConfig):
    # optimizer, schedule and batching: the shared train.optimizers / schedulers / batching (configs/paper.json5)
    duration_loss_weight: float = 1.0
    aligner_loss_weight: float = 1.0


@dataclass
class WaveGrad2InferConfig(SentenceSettings):
    """Inference settings (the ``infer`` section; ``--set infer.KEY=VALUE``), checked when they are set."""

    schedule: str = "fast_6"  # preset name or schedule file (*.json; models/tts/wavegrad2/schedule_search.py)
    steps: Optional[int] = None  # set: a schedule of this many steps (overrides ``schedule``)
    clip_denoised: bool = True
    length_scale: float = 1.0  # multiplies the predicted durations: > 1 speaks slower (checked: > 0)
    seed: int = 1234

    def __post_init__(self) -> None:
        super().__post_init__()  # the shared settings (length_scale, seed, ...): models/base/infer_settings.py
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"infer.steps must be >= 1 (or null to use infer.schedule), got {self.steps}")
        if self.steps is None and self.schedule not in preset_names() and not Path(self.schedule).is_file():
            raise ValueError(f"infer.schedule {self.schedule!r} is neither a preset ({', '.join(preset_names())}) "
                             "nor an existing schedule file")


@experiment_config("wavegrad2", model=WaveGrad2Config, data=WaveGrad2DataConfig, train=WaveGrad2TrainConfig,
                   infer=WaveGrad2InferConfig)
class WaveGrad2ExperimentConfig:
    """A WaveGrad 2 experiment; checks that the duration source fits the model."""

    def __post_init__(self) -> None:
        if self.data.durations == "aligner" and self.model.aligner_mel_channels <= 0:
            raise ValueError("data.durations = 'aligner' needs model.aligner_mel_channels > 0 (e.g. 80)")
        if self.data.speakers and len(self.data.speakers) > max(self.model.n_speakers, 1):
            raise ValueError(f"data.speakers lists {len(self.data.speakers)} speakers, model.n_speakers is "
                             f"{self.model.n_speakers}")


def from_maum_config(hp: Mapping[str, Any], n_symbols: int) -> WaveGrad2Config:
    """Model config from maum-ai's ``hparameter.yaml`` (as a dict), with its conventions switched on."""
    try:
        enc, dur, wg, ddpm = hp["encoder"], hp["dur_predictor"], hp["wavegrad"], hp["ddpm"]
        up, down = wg["upsample"], wg["downsample"]
        n_speakers = len(hp["data"]["speakers"])
        cfg = WaveGrad2Config(
            n_symbols=n_symbols, encoder_channels=enc["channel"], encoder_kernel=enc["kernel"],
            encoder_depth=enc["depth"], encoder_dropout=enc["dropout_rate"], encoder_zoneout=0.0,
            encoder_mask_padding=False,
            n_speakers=n_speakers, speaker_channels=enc["speaker_emb"],
            duration_lstm_channels=dur["dur_lstm_channel"], range_lstm_channels=dur["range_lstm_channel"],
            duration_unit="seconds", frame_offset=0.0, mask_padded_frames=False,
            sample_rate=hp["audio"]["sampling_rate"],  # official hparams name
            window_frames=hp["window"]["length"], factors=list(wg["scale_factors"]),
            up_preconv_channels=up["preconv_channel"], up_channels=list(up["out_channels"]),
            up_dilations=[list(d) for d in up["dilations"]], down_preconv_channels=down["preconv_channel"],
            down_channels=list(down["out_channels"]), down_dilations=[list(d) for d in down["dilations"]],
            blocks_per_stage=2 if wg.get("is_large") else 1, pos_emb_scale=float(ddpm["pos_emb_scale"]),
        )  # fmt: skip
    except KeyError as err:
        raise ValueError(f"maum-ai wavegrad2 config lacks key {err}") from err
    if cfg.hop_length != hp["window"]["scale"]:
        raise ValueError(f"maum-ai config: window.scale {hp['window']['scale']} != prod(scale_factors) {cfg.hop_length}")
    if wg["encode_channel"] != cfg.cond_channels:
        raise ValueError(f"maum-ai config: wavegrad.encode_channel {wg['encode_channel']} != encoder.channel + "
                         f"speaker_emb = {cfg.cond_channels}")
    return cfg
