"""Multi-period sub-discriminator of HiFi-GAN (``DiscriminatorP``)."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from modules.commons import get_padding
from modules.discriminators.norms import conv_stack, norm_layer


class DiscriminatorP(nn.Module):
    """Folds a waveform ``(B, 1, T)`` into ``(B, 1, T/p, p)`` and applies ``(k, 1)`` 2-D convolutions.

    Args:
        period: p (the signal is reflect-padded to a multiple of p).
        kernel_size, stride: along time; the last conv of ``convs`` has stride 1.
        use_spectral_norm: spectral instead of weight normalisation.
        channels: output channels of ``convs`` (HiFi-GAN: 32, 128, 512, 1024, 1024).
    """

    def __init__(
        self,
        period: int,
        kernel_size: int = 5,
        stride: int = 3,
        use_spectral_norm: bool = False,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
    ):
        super().__init__()
        self.period = period
        pad = (get_padding(kernel_size, 1), 0)
        ins = [1] + list(channels[:-1])
        strides = [stride] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            norm_layer(nn.Conv2d(cin, cout, (kernel_size, 1), (s, 1), padding=pad), use_spectral_norm)
            for cin, cout, s in zip(ins, channels, strides)
        )
        self.conv_post = norm_layer(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)), use_spectral_norm)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """``x (B, 1, T)`` -> (logits ``(B, N)``, feature maps of every layer)."""
        batch, channels, length = x.shape
        if length % self.period != 0:
            n_pad = self.period - length % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            length += n_pad
        x = x.view(batch, channels, length // self.period, self.period)
        return conv_stack(self.convs, self.conv_post, x)
