"""Waveform -> frame-rate Gaussian posterior ``q(z|x)``: the Glow-WaveGAN stage-1 encoder.

A mirror of the HiFi-GAN generator: ``conv_pre`` (k 7) -> per stage [mean of the stage's HiFi-GAN residual blocks
-> LeakyReLU -> strided conv ``downs.{i}`` (kernel ``2 s``, stride ``s``, channels doubled up to
``max_channels``)] -> LeakyReLU -> ``conv_post`` (k 3) -> ``(mean, log_std)``.  The residual blocks run at the
widths and rates of the generator's (32 channels at the sample rate ... 256 channels at 1/32 for HiFi-GAN V1),
so encoder and decoder cost about the same.  All convolutions are weight-normed (legacy ``weight_g``/``weight_v``
names) and initialised N(0, 0.01) like the generator.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from modules.vocoders.amp import average_blocks, init_conv_weights
from modules.vocoders.hifigan import LRELU_SLOPE, make_resblock
from modules.weight_norm import fold_weight_norm, weight_norm


class WaveEncoder(nn.Module):
    """``(B, 1, L)`` with ``L`` a multiple of ``hop = prod(downsample_rates)`` -> ``mean, log_std (B, D, L / hop)``.

    Args:
        out_channels: latent channels ``D``.
        downsample_rates: stride of each stage (e.g. 2, 2, 8, 8: the reverse of HiFi-GAN's upsampling).
        initial_channels: channels after ``conv_pre``; doubled at every stage, capped at ``max_channels``.
        resblock, resblock_kernel_sizes, resblock_dilation_sizes: the HiFi-GAN blocks averaged at every stage.
    """

    def __init__(
        self,
        out_channels: int,
        downsample_rates: Sequence[int],
        initial_channels: int = 32,
        max_channels: int = 512,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ):
        super().__init__()
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("WaveEncoder: resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        self.downsample_rates = [int(s) for s in downsample_rates]
        self.hop_length = 1
        for s in self.downsample_rates:
            self.hop_length *= s
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(1, initial_channels, 7, padding=3))
        self.downs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = initial_channels
        for stride in self.downsample_rates:
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(make_resblock(resblock, channels, k, d))
            out = min(2 * channels, max_channels)
            self.downs.append(weight_norm(nn.Conv1d(channels, out, 2 * stride, stride)))
            channels = out
        self.conv_post = weight_norm(nn.Conv1d(channels, 2 * out_channels, 3, padding=1))
        init_conv_weights(self)
        self.out_channels = out_channels

    def forward(self, wav: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if wav.dim() != 3 or wav.size(1) != 1:
            raise ValueError(f"WaveEncoder: expected a (B, 1, L) waveform, got {tuple(wav.shape)}")
        if wav.size(-1) % self.hop_length != 0:
            raise ValueError(f"WaveEncoder: length {wav.size(-1)} is not a multiple of the hop {self.hop_length}")
        x = self.conv_pre(wav)
        for i, (down, stride) in enumerate(zip(self.downs, self.downsample_rates)):
            x = average_blocks(x, self.resblocks, i, self.num_kernels)
            # Pad by s//2 and s - s//2 so a kernel of 2s with stride s yields exactly L / s frames.
            x = down(F.pad(F.leaky_relu(x, LRELU_SLOPE), (stride // 2, stride - stride // 2)))
        stats = self.conv_post(F.leaky_relu(x, LRELU_SLOPE))
        mean, log_std = torch.split(stats, self.out_channels, dim=1)
        return mean, log_std

    def sample(self, wav: torch.Tensor, noise_scale: float = 1.0, noise: Optional[torch.Tensor] = None):
        """``(z, mean, log_std)`` with ``z = mean + exp(log_std) * noise * noise_scale``."""
        mean, log_std = self(wav)
        if noise is None:
            noise = torch.randn_like(mean)
        return mean + torch.exp(log_std) * noise * noise_scale, mean, log_std

    def fold_weight_norm(self) -> int:
        return fold_weight_norm(self)


def gaussian_kl_to_standard_normal(mean: torch.Tensor, log_std: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Analytic ``KL(N(mean, exp(log_std)^2) || N(0, 1))`` per element, averaged over the (masked) elements.

    ``0.5 (mean^2 + sigma^2 - 1) - log_std``; ``mean, log_std (B, D, T)``, ``mask (B, 1, T)`` or None.
    """
    kl = 0.5 * (mean.float() ** 2 + torch.exp(2 * log_std.float()) - 1.0) - log_std.float()
    if mask is None:
        return kl.mean()
    return torch.sum(kl * mask) / (torch.sum(mask) * mean.size(1))
