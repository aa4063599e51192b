"""A deliberately small registered model: a strided-conv waveform autoencoder.

It exists to show (and test) the whole plug-in path — registry, config schema, BaseTrainer, checkpoints,
generic CLIs — with nothing model-specific in the way. See CONTRIBUTING.md.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.example.toy_autoencoder.config import ToyAutoencoderConfig
from utils.registry import register


@register("model", "toy_autoencoder")
class ToyWaveAutoencoder(BuiltFromConfig, nn.Module):
    """(B, 1, T) waveform -> (B, C, T/stride) code -> (B, 1, T) waveform; built from a :class:`ToyAutoencoderConfig`
    (:func:`models.base.building.build_model`)."""

    config_class = ToyAutoencoderConfig

    def __init__(self, *, channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.config = config_of_arguments(ToyAutoencoderConfig, locals())
        if kernel_size < stride or (kernel_size - stride) % 2:
            raise ValueError("kernel_size must be >= stride with an even difference (exact lengths)")
        pad = (kernel_size - stride) // 2
        self.stride = stride
        self.encoder = nn.Conv1d(1, channels, kernel_size, stride=stride, padding=pad)
        self.decoder = nn.ConvTranspose1d(channels, 1, kernel_size, stride=stride, padding=pad)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) -> (B, C, ceil(T/stride)) code in (-1, 1)."""
        pad = (-wav.shape[-1]) % self.stride
        return torch.tanh(self.encoder(nn.functional.pad(wav, (0, pad))))

    def decode(self, code: torch.Tensor, length: int) -> torch.Tensor:
        """(B, C, F) code -> (B, 1, length) waveform (length <= F·stride)."""
        return self.decoder(code)[..., :length]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(wav), wav.shape[-1])
