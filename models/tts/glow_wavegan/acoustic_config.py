"""Constructor arguments of the stage-2 flow acoustic model: the keyword arguments of the official Glow-TTS
``models.FlowGenerator`` (same names, so an official ``config.json`` ``model`` block or a parity fixture's
``config`` maps 1:1), with ``out_channels`` = the stage-1 latent size ``D``.  Defaults: glow-tts ``base.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class GlowTTSConfig:
    n_vocab: int = 178  # symbol table size (processors/text: 178 symbols)
    out_channels: int = 128  # latent channels D (glow-tts: mel bins)
    hidden_channels: int = 192
    filter_channels: int = 768
    filter_channels_dp: int = 256
    kernel_size: int = 3
    n_heads: int = 2
    n_layers_enc: int = 6
    p_dropout: float = 0.1
    n_blocks_dec: int = 12
    kernel_size_dec: int = 5
    dilation_rate: int = 1
    n_block_layers: int = 4
    p_dropout_dec: float = 0.05
    n_speakers: int = 0
    gin_channels: int = 0
    n_split: int = 4
    n_sqz: int = 2
    sigmoid_scale: bool = False
    window_size: Optional[int] = 4
    block_length: Optional[int] = None
    mean_only: bool = True  # True: unit-variance prior (x_logs = 0); False: learned log-std (proj_s)
    hidden_channels_enc: Optional[int] = None  # None: hidden_channels
    hidden_channels_dec: Optional[int] = None  # None: hidden_channels
    prenet: bool = True

    def __post_init__(self) -> None:
        enc = self.encoder_channels
        if enc % self.n_heads != 0:
            raise ValueError(f"model.hidden_channels_enc {enc} not divisible by n_heads {self.n_heads}")
        if self.n_sqz < 1:
            raise ValueError(f"model.n_sqz must be >= 1, got {self.n_sqz}")
        flow_channels = self.out_channels * self.n_sqz
        if self.n_split % 2 != 0 or flow_channels % self.n_split != 0 or flow_channels % 2 != 0:
            raise ValueError(f"model.n_split {self.n_split} must be even and divide out_channels x n_sqz = {flow_channels}")
        if self.kernel_size_dec % 2 != 1:
            raise ValueError(f"model.kernel_size_dec must be odd, got {self.kernel_size_dec}")
        if self.n_speakers > 1 and self.gin_channels <= 0:
            raise ValueError(f"model.n_speakers={self.n_speakers} needs gin_channels > 0")

    @property
    def encoder_channels(self) -> int:
        return self.hidden_channels_enc or self.hidden_channels

    @property
    def decoder_channels(self) -> int:
        return self.hidden_channels_dec or self.hidden_channels
