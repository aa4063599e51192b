"""Hierarchical adaptive generator (HAG) of HierSpeech++: source network + waveform generator.

* :class:`SourceNetwork` (``sn``): latent ``(B, 192, T)`` -> excitation features ``(B, uic/4, 4T)`` at the F0
  rate (200 Hz) and a predicted ln(F0+1) ``(B, 1, 4T)`` (trained against YAAPT F0).
* :class:`DBlock` (``dec.downs``): brings the excitation back to the latent rate.
* :class:`HierarchicalGenerator` (``dec``): latent + excitation + style -> waveform; the excitation is
  added again after the first (x4) upsampling stage, where both run at 200 Hz.

All residual stacks are BigVGAN AMP blocks (modules/vocoders/amp.py), flattened as ``stage * n + kernel``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from modules.activations import SnakeBeta
from modules.alias_free import Activation1d
from modules.vocoders.amp import (activation_then_conv, average_blocks, build_amp_blocks, init_conv_weights,
                                  runs_time_major, transposed_conv_time_major)
from modules.weight_norm import weight_norm

LRELU_SLOPE = 0.1


def _upsampling_stages(initial: int, rates: Sequence[int], kernels: Sequence[int]) -> nn.ModuleList:
    """Weight-normed transposed convs halving the channels at every stage (``ups.{i}``)."""
    if len(rates) != len(kernels):
        raise ValueError(f"upsample rates {list(rates)} and kernel sizes {list(kernels)} differ in length")
    for u, k in zip(rates, kernels):
        if k < u or (k - u) % 2 != 0:
            raise ValueError(f"upsample kernel {k} with rate {u}: need k >= u and k - u even for exact lengths")
    if initial % (2 ** len(rates)) != 0:
        raise ValueError(f"upsample_initial_channel {initial} must be divisible by 2**{len(rates)}")
    ups = nn.ModuleList(
        weight_norm(nn.ConvTranspose1d(initial // 2**i, initial // 2 ** (i + 1), k, u, padding=(k - u) // 2))
        for i, (u, k) in enumerate(zip(rates, kernels))
    )
    init_conv_weights(ups)
    return ups


class SourceNetwork(nn.Module):
    """Latent -> excitation at 4x the frame rate and predicted log-F0.

    Args:
        upsample_initial_channel: width after ``conv_pre`` (the official model passes dec's uic // 2).
        in_channels: latent channels (192; hard-coded officially).
        gin_channels: style dim (256; hard-coded officially).

    Fixed geometry: two x2 stages (kernel 4), AMP kernels 3/5/7 with dilations 1/3/5.
    """

    upsample_rates = (2, 2)
    upsample_kernel_sizes = (4, 4)
    resblock_kernel_sizes = (3, 5, 7)
    resblock_dilation_sizes = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __init__(self, upsample_initial_channel: int = 256, in_channels: int = 192, gin_channels: int = 256):
        super().__init__()
        self.num_kernels = len(self.resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3))
        self.ups = _upsampling_stages(upsample_initial_channel, self.upsample_rates, self.upsample_kernel_sizes)
        stage_channels = [upsample_initial_channel // 2 ** (i + 1) for i in range(len(self.upsample_rates))]
        self.out_channels = stage_channels[-1]
        self.resblocks = build_amp_blocks(stage_channels, self.resblock_kernel_sizes, self.resblock_dilation_sizes)
        self.activation_post = Activation1d(SnakeBeta(stage_channels[-1], alpha_logscale=True))
        self.conv_post = nn.Conv1d(stage_channels[-1], 1, 7, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x (B, in, T)``, ``g (B, gin, 1)`` -> ``(e (B, uic/4, 4T), log_f0_hat (B, 1, 4T))``."""
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = average_blocks(up(x), self.resblocks, i, self.num_kernels)
        x = self.activation_post(x)
        return x, self.conv_post(x)


class DBlock(nn.Module):
    """Downsampling block: nearest-neighbour decimation by ``factor`` + three dilated convs, residual 1x1."""

    def __init__(self, input_size: int, hidden_size: int, factor: int):
        super().__init__()
        self.factor = factor
        self.residual_dense = weight_norm(nn.Conv1d(input_size, hidden_size, 1))
        self.conv = nn.ModuleList([
            weight_norm(nn.Conv1d(input_size, hidden_size, 3, dilation=1, padding=1)),
            weight_norm(nn.Conv1d(hidden_size, hidden_size, 3, dilation=2, padding=2)),
            weight_norm(nn.Conv1d(hidden_size, hidden_size, 3, dilation=4, padding=4)),
        ])
        init_conv_weights(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in, T)`` -> ``(B, hidden, T // factor)``."""
        size = x.shape[-1] // self.factor
        residual = F.interpolate(self.residual_dense(x), size=size)
        x = F.interpolate(x, size=size)
        for layer in self.conv:
            x = layer(F.leaky_relu(x, LRELU_SLOPE))
        return x + residual


class HierarchicalGenerator(nn.Module):
    """Waveform generator driven by the latent, the source excitation and the style.

    Args:
        initial_channel: latent channels (inter_channels).
        resblock_kernel_sizes, resblock_dilation_sizes: AMP blocks averaged at every stage.
        upsample_rates: per-stage factors; the first must be 4 (excitation rate) and the product the hop.
        upsample_initial_channel: width after ``conv_pre`` (divisible by 8 and by 2**stages).
        upsample_kernel_sizes: transposed-conv kernels.
        gin_channels: style dim.
    """

    def __init__(self, initial_channel: int, resblock_kernel_sizes: Sequence[int],
                 resblock_dilation_sizes: Sequence[Sequence[int]], upsample_rates: Sequence[int],
                 upsample_initial_channel: int, upsample_kernel_sizes: Sequence[int], gin_channels: int = 256):
        super().__init__()
        if not upsample_rates or upsample_rates[0] != 4:
            raise ValueError(f"upsample_rates must start with 4 (the excitation is added at 4x), got {list(upsample_rates)}")
        if upsample_initial_channel % 8 != 0:
            raise ValueError(f"upsample_initial_channel {upsample_initial_channel} must be divisible by 8")
        self.num_kernels = len(resblock_kernel_sizes)
        uic = upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(initial_channel, uic, 7, padding=3))
        self.ups = _upsampling_stages(uic, upsample_rates, upsample_kernel_sizes)
        stage_channels = [uic // 2 ** (i + 1) for i in range(len(upsample_rates))]
        self.resblocks = build_amp_blocks(stage_channels, resblock_kernel_sizes, resblock_dilation_sizes)
        self.activation_post = Activation1d(SnakeBeta(stage_channels[-1], alpha_logscale=True))
        self.conv_post = nn.Conv1d(stage_channels[-1], 1, 7, padding=3, bias=False)
        if gin_channels > 0:
            self.cond = nn.Conv1d(gin_channels, uic, 1)
        # The source network (built with uic // 2) emits uic // 8 excitation channels.
        self.downs = DBlock(uic // 8, uic, 4)
        self.proj = nn.Conv1d(uic // 8, uic // 2, 7, padding=3)

    def forward(self, x: torch.Tensor, excitation: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, C, T)``, ``excitation (B, uic/8, 4T)``, ``g (B, gin, 1)`` -> ``(B, 1, T * prod(rates))``."""
        x = self.conv_pre(x) + self.downs(excitation)
        if g is not None:
            x = x + self.cond(g)
        # CPU inference with channels-last AMP blocks: the whole up-sampling chain stays in time-major memory
        # (transposed convs, blocks, final activation and conv), with no layout change between stages
        time_major = runs_time_major(self.resblocks, x)
        for i, up in enumerate(self.ups):
            x = transposed_conv_time_major(up, x) if time_major else up(x)
            if i == 0:
                x = x + self.proj(excitation)
            x = average_blocks(x, self.resblocks, i, self.num_kernels, time_major_out=time_major)
        return torch.tanh(activation_then_conv(self.activation_post, self.conv_post, x))
