"""VITS posterior encoder: features -> diagonal Gaussian latent (used by VITS ``enc_q`` and the TTV ``enc_q``).

``pre`` (1x1 conv) -> WaveNet ``enc`` (optionally conditioned on ``g``) -> ``proj`` (1x1 conv to mean and
log-std) -> reparameterised sample. Checkpoint names: ``pre``, ``enc.*`` (modules/wavenet.py), ``proj``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from modules.commons import sequence_mask
from modules.wavenet import WaveNet


class PosteriorEncoder(nn.Module):
    """Posterior ``q(z | x)``.

    Args:
        in_channels: input feature size (e.g. 513 linear-spectrogram bins, 1024 SSL dims).
        out_channels: latent size.
        hidden_channels: WaveNet width.
        kernel_size, dilation_rate, n_layers: WaveNet layout.
        gin_channels: global conditioning size (0 = none).
        p_dropout: WaveNet dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels, p_dropout=p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        g: Optional[torch.Tensor] = None,
        noise_scale: float = 1.0,
        noise: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode and sample.

        Args:
            x: ``(B, in_channels, T)`` features.
            x_lengths: ``(B,)`` valid frames.
            g: ``(B, gin, 1)`` conditioning or None.
            noise_scale: multiplies the sampling noise (0 returns the mean).
            noise: optional ``(B, out_channels, T)`` standard normal replacing the internal draw.

        Returns:
            ``z, m, logs`` of shape ``(B, out_channels, T)`` and ``x_mask (B, 1, T)``;
            ``z = (m + noise * noise_scale * exp(logs)) * x_mask``.
        """
        if x.dim() != 3 or x.size(1) != self.in_channels:
            raise ValueError(f"PosteriorEncoder: expected input (B, {self.in_channels}, T), got {tuple(x.shape)}")
        x_mask = sequence_mask(x_lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        h = self.enc(self.pre(x) * x_mask, x_mask, g=g)
        stats = self.proj(h) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        if noise is None:
            noise = torch.randn_like(m)
        elif noise.shape != m.shape:
            raise ValueError(f"PosteriorEncoder: noise must be {tuple(m.shape)}, got {tuple(noise.shape)}")
        z = (m + noise * noise_scale * torch.exp(logs)) * x_mask
        return z, m, logs, x_mask
