"""Periodic activations of BigVGAN (Lee et al., 2023): Snake and SnakeBeta.

Both keep their per-channel parameters on a log scale when ``alpha_logscale`` is true (HierSpeech++ and
SpeechSR always do): the stored value ``a`` means a frequency ``exp(a)``, initialised to 0 (i.e. 1).
Parameter names ``alpha``/``beta`` match the official checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

# Guards the division by the magnitude; the official value, part of the arithmetic we must match.
SNAKE_EPS = 1e-9


class Snake(nn.Module):
    """``x + 1/alpha * sin^2(alpha * x)`` with one trainable frequency per channel.

    Args:
        channels: number of channels C of the input (B, C, T).
        alpha: initial value (in log space when ``alpha_logscale``).
        alpha_logscale: store log(alpha) instead of alpha.
    """

    def __init__(self, channels: int, alpha: float = 1.0, alpha_logscale: bool = False):
        super().__init__()
        if channels <= 0:
            raise ValueError(f"Snake: channels must be positive, got {channels}")
        self.alpha_logscale = alpha_logscale
        # log-scale parameters start at 0 (frequency 1) whatever ``alpha`` says, as in BigVGAN
        init = torch.zeros(channels) if alpha_logscale else torch.full((channels,), float(alpha))
        self.alpha = nn.Parameter(init)

    def frequency(self) -> torch.Tensor:
        """Per-channel frequency as (C, 1)."""
        a = torch.exp(self.alpha) if self.alpha_logscale else self.alpha
        return a.unsqueeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        a = self.frequency()
        return x + 1.0 / (a + SNAKE_EPS) * torch.sin(x * a).pow(2)


class SnakeBeta(nn.Module):
    """``x + 1/beta * sin^2(alpha * x)``: separate frequency (alpha) and magnitude (beta) per channel.

    Args:
        channels: number of channels C of the input (B, C, T).
        alpha: initial value of both parameters (in log space when ``alpha_logscale``).
        alpha_logscale: store log(alpha), log(beta) (official HierSpeech++/SpeechSR setting).
    """

    def __init__(self, channels: int, alpha: float = 1.0, alpha_logscale: bool = False):
        super().__init__()
        if channels <= 0:
            raise ValueError(f"SnakeBeta: channels must be positive, got {channels}")
        self.alpha_logscale = alpha_logscale
        # log-scale parameters start at 0 (frequency and magnitude 1), as in BigVGAN
        init = torch.zeros(channels) if alpha_logscale else torch.full((channels,), float(alpha))
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(frequency, 1 / (magnitude + eps)), each (C, 1)."""
        a, b = self.alpha, self.beta
        if self.alpha_logscale:
            a, b = torch.exp(a), torch.exp(b)
        return a.unsqueeze(-1), (1.0 / (b + SNAKE_EPS)).unsqueeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        freq, inv_mag = self.coefficients()
        return x + inv_mag * torch.sin(x * freq).pow(2)
