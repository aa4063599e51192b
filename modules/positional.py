"""Sinusoidal absolute positions with a learnable (or frozen) scale ``alpha`` (VALL-E style).

``out = x + alpha * pe[positions]`` with the interleaved table ``pe[t, 2i] = sin(t / 10000^(2i/d))``,
``pe[t, 2i+1] = cos(...)``. The table is computed in float32 (so bf16 runs do not round the table itself) and
is a plain cached attribute, not a buffer: checkpoints of the reference implementations hold only ``alpha``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn


def sine_table(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` float32 table; column pairs (2i, 2i+1) = (sin, cos) of ``t * 10000^(-2i/dim)``."""
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


class SinePositionalEmbedding(nn.Module):
    """Adds ``alpha * sine_table`` to ``x (B, T, D)``; ``alpha`` (1,) is trained only if ``learnable_alpha``.

    Parameter: ``alpha``. ``dropout`` is applied after the addition.
    """

    def __init__(self, dim: int, dropout: float = 0.0, learnable_alpha: bool = True, initial_length: int = 4000):
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1), requires_grad=learnable_alpha)
        self.dropout = nn.Dropout(dropout)
        self._table = sine_table(initial_length, dim)

    def table(self, length: int, device: torch.device) -> torch.Tensor:
        """The first ``length`` rows ``(length, D)`` on ``device`` (extended on demand)."""
        if self._table.shape[0] < length:
            self._table = sine_table(max(length, 2 * self._table.shape[0]), self.dim)
        if self._table.device != device:
            self._table = self._table.to(device)
        return self._table[:length]

    def forward(self, x: torch.Tensor, positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, T, D)``; ``positions (B, T)`` int (default ``0..T-1`` for every item) -> ``(B, T, D)``."""
        if positions is None:
            pe = self.table(x.shape[1], x.device).unsqueeze(0)
        else:
            pe = self.table(int(positions.max()) + 1, x.device)[positions]
        return self.dropout(x + self.alpha * pe)
