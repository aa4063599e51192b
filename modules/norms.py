"""Conditioned normalisation layers."""

from __future__ import annotations

import torch
from torch import nn


class AdaptiveLayerNorm(nn.Module):
    """AdaLN: ``w * LayerNorm(x) + b`` with ``[w, b] = project_layer(cond)`` (no ``1 + w``, no zero init).

    Parameters: ``project_layer`` (Linear D -> 2D) and ``norm`` (a LayerNorm with its own affine), the layout
    of VALL-E's NAR decoder. ``x (B, T, D)``, ``cond (B or 1, D)`` or ``(B or 1, 1, D)`` -> ``(B, T, D)``.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim = dim
        self.project_layer = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        weight, bias = torch.split(self.project_layer(cond), self.dim, dim=-1)
        if weight.dim() == 2:
            weight, bias = weight.unsqueeze(1), bias.unsqueeze(1)
        return weight * self.norm(x) + bias
