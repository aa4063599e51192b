"""Model configuration of the HierSpeech++ TTV (official ``ttv_v1/config.json`` model block).

Only ``inter_channels`` and ``hidden_channels`` change the official network; every other official key is
accepted (so a released config validates) but, as in the official code, not read: the text encoder always
uses 4*inter filter channels, 4 heads, 3+3 layers, kernel 9 and dropout 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List


@dataclass
class TTVConfig:
    inter_channels: int = 256  # latent / text-encoder width (divisible by 4: 4 attention heads)
    hidden_channels: int = 256  # posterior WaveNet and flow DiT width (divisible by 4)
    n_vocab: int = 178  # symbol table size (blank/pad id 0)
    ssl_channels: int = 1024  # MMS-300m feature size
    n_mel_channels: int = 80  # prosody-prompt log-mel bins
    gin_channels: int = 256  # style size (fixed by the official code)
    leaky_padding: bool = False  # True: official unmasked padding in flow attention and style pooling
    # Accepted for compatibility with the official file, not read by the model:
    filter_channels: int = 1024
    n_heads: int = 4
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    resblock: str = "1"
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    use_spectral_norm: bool = False

    def __post_init__(self) -> None:
        if self.inter_channels % 4 != 0 or self.inter_channels <= 0:
            raise ValueError(f"inter_channels must be a positive multiple of 4 (4 heads), got {self.inter_channels}")
        if self.hidden_channels % 4 != 0 or self.hidden_channels <= 0:
            raise ValueError(f"hidden_channels must be a positive multiple of 4 (4 heads), got {self.hidden_channels}")
        if self.gin_channels != 256:
            raise ValueError(f"gin_channels is fixed to 256 by the TTV text encoder and pitch predictor, "
                             f"got {self.gin_channels}")
