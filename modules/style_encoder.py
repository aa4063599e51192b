"""Global style (voice) encoder of HierSpeech++ and its TTV: log-mel ``(B, 80, T)`` -> ``(B, 256)``.

spectral (two 1x1 convs with Mish) -> temporal (two residual gated convs) -> masked multi-head
self-attention (residual) -> 1x1 ``fc`` -> average over time.

Padding: officially the second gated conv reads the first one's (unmasked) padded frames, and the pooling
sums the ``fc`` output over *all* frames and divides by the valid length, so padded frames leak into the
style of shorter items in a batch.
``leaky_padding=True`` reproduces that for parity; the default averages valid frames only, which equals
the official result whenever the item is not padded.

Checkpoint names: ``spectral.{0,3}``, ``temporal.{0,1}.conv1``, ``slf_attn.conv_{q,k,v,o}``, ``fc``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from modules.transformer import MultiHeadAttention


class Mish(nn.Module):
    """``x * tanh(softplus(x))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class Conv1dGLU(nn.Module):
    """Residual gated conv: ``x + dropout(a * sigmoid(b))`` with ``[a, b] = conv(x)`` ('same' padding)."""

    def __init__(self, channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)
        self.dropout = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.conv1(x), self.channels, dim=1)
        return x + self.dropout(a * torch.sigmoid(b))


class StyleEncoder(nn.Module):
    """Mel-spectrogram style encoder.

    Args:
        in_dim: mel bins (80).
        hidden_dim: width (256).
        out_dim: style dim (256 = gin_channels).
        kernel_size: temporal conv kernel (5).
        n_heads: attention heads (2).
        p_dropout: dropout (0.1).
        leaky_padding: official pooling over padded frames (see module docstring).
    """

    def __init__(
        self,
        in_dim: int = 80,
        hidden_dim: int = 256,
        out_dim: int = 256,
        kernel_size: int = 5,
        n_heads: int = 2,
        p_dropout: float = 0.1,
        leaky_padding: bool = False,
    ):
        super().__init__()
        self.leaky_padding = leaky_padding
        self.spectral = nn.Sequential(
            nn.Conv1d(in_dim, hidden_dim, 1),
            Mish(),
            nn.Dropout(p_dropout),
            nn.Conv1d(hidden_dim, hidden_dim, 1),
            Mish(),
            nn.Dropout(p_dropout),
        )
        self.temporal = nn.Sequential(
            Conv1dGLU(hidden_dim, kernel_size, p_dropout), Conv1dGLU(hidden_dim, kernel_size, p_dropout)
        )
        self.slf_attn = MultiHeadAttention(hidden_dim, hidden_dim, n_heads, p_dropout=p_dropout, proximal_init=True)
        self.atten_drop = nn.Dropout(p_dropout)
        self.fc = nn.Conv1d(hidden_dim, out_dim, 1)

    def forward(self, mel: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``mel (B, in_dim, T)``, ``mask (B, 1, T)`` (None = all valid) -> style ``(B, out_dim)``."""
        if mask is None:
            mask = torch.ones_like(mel[:, :1])
        x = self.spectral(mel) * mask
        for layer in self.temporal:
            # Official: no mask between the two gated convs, so the second one reads padded frames.
            x = layer(x) if self.leaky_padding else layer(x) * mask
        x = x * mask
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x + self.atten_drop(self.slf_attn(x, x, attn_mask=attn_mask))
        x = self.fc(x)
        if not self.leaky_padding:
            x = x * mask
        return x.sum(dim=2) / mask.sum(dim=2)
