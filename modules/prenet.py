"""Convolutional prenet of the Glow-TTS text encoder (``ConvReluNorm``).

Checkpoint names: ``conv_layers.{i}``, ``norm_layers.{i}`` (LayerNorm ``gamma``/``beta``), ``proj``.
"""

from __future__ import annotations

import torch
from torch import nn

from modules.transformer import LayerNorm


class ConvReluNorm(nn.Module):
    """``n_layers`` x [conv -> LayerNorm -> ReLU -> dropout], then a zero-initialised 1x1 ``proj`` added to the input.

    Starts as the identity (``proj`` is zero), so it can be switched on in a trained encoder.
    ``norm_eps`` 1e-4 is the Glow-TTS LayerNorm epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int,
        n_layers: int,
        p_dropout: float,
        norm_eps: float = 1e-4,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"ConvReluNorm: n_layers must be >= 1, got {n_layers}")
        if in_channels != out_channels:
            raise ValueError(f"ConvReluNorm: the residual needs in_channels == out_channels, got {in_channels}, {out_channels}")
        self.conv_layers = nn.ModuleList()
        self.norm_layers = nn.ModuleList()
        for i in range(n_layers):
            self.conv_layers.append(nn.Conv1d(in_channels if i == 0 else hidden_channels, hidden_channels, kernel_size,
                                              padding=kernel_size // 2))
            self.norm_layers.append(LayerNorm(hidden_channels, norm_eps))
        self.drop = nn.Dropout(p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T)``, ``x_mask (B, 1, T)`` -> ``(B, C, T)`` masked."""
        h = x
        for conv, norm in zip(self.conv_layers, self.norm_layers):
            h = self.drop(torch.relu(norm(conv(h * x_mask))))
        return (x + self.proj(h)) * x_mask
