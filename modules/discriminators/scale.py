"""Multi-scale sub-discriminator of MelGAN/HiFi-GAN (``DiscriminatorS``): grouped strided 1-D convolutions."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from modules.discriminators.norms import conv_stack, norm_layer

# (in, out, kernel, stride, groups, padding) of the HiFi-GAN / VITS layout.
_LAYERS = (
    (1, 16, 15, 1, 1, 7),
    (16, 64, 41, 4, 4, 20),
    (64, 256, 41, 4, 16, 20),
    (256, 1024, 41, 4, 64, 20),
    (1024, 1024, 41, 4, 256, 20),
    (1024, 1024, 5, 1, 1, 2),
)


class DiscriminatorS(nn.Module):
    """Waveform ``(B, 1, T)`` -> (logits ``(B, N)``, feature maps); keys ``convs.{0..5}``, ``conv_post``."""

    def __init__(self, use_spectral_norm: bool = False):
        super().__init__()
        self.convs = nn.ModuleList(
            norm_layer(nn.Conv1d(cin, cout, k, s, groups=g, padding=p), use_spectral_norm)
            for cin, cout, k, s, g, p in _LAYERS
        )
        self.conv_post = norm_layer(nn.Conv1d(1024, 1, 3, 1, padding=1), use_spectral_norm)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        return conv_stack(self.convs, self.conv_post, x)
