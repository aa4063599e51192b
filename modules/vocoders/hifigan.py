"""HiFi-GAN residual blocks and generator (Kong et al., 2020), in the variant used by VITS.

* :class:`ResBlock1` — 3 x [LeakyReLU -> dilated conv -> LeakyReLU -> conv] with residuals
  (``convs1.{i}``, ``convs2.{i}``); :class:`ResBlock2` — 2 x [LeakyReLU -> dilated conv] (``convs.{i}``).
  Also used on their own by the HierSpeech++ TTV pitch predictor.
* :class:`HiFiGANGenerator` — ``conv_pre`` -> per stage [LeakyReLU(0.1) -> transposed conv ``ups.{i}`` ->
  mean of the stage's resblocks] -> LeakyReLU -> ``conv_post`` -> tanh; resblocks in one flat list indexed
  ``stage * n_kernels + kernel``; optional global condition through ``cond``.

VITS specifics (defaults here): ``conv_pre``/``conv_post`` are plain convolutions, ``conv_post`` has no bias and
the last LeakyReLU uses slope 0.01.  The original HiFi-GAN weight-normalises both and gives ``conv_post`` a bias
(``weight_norm_io=True, post_bias=True``).
"""

from __future__ import annotations

import math

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from modules.commons import conv_reach, get_padding
from modules.vocoders.amp import average_blocks, init_conv_weights
from modules.weight_norm import fold_weight_norm, weight_norm

LRELU_SLOPE = 0.1


def _same_conv(channels: int, kernel_size: int, dilation: int) -> nn.Module:
    return weight_norm(
        nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation, padding=get_padding(kernel_size, dilation))
    )


class ResBlock1(nn.Module):
    """``(B, C, T) -> (B, C, T)``: per dilation d, ``x += conv2(lrelu(conv1_d(lrelu(x))))`` (masked)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in dilation)
        self.convs2 = nn.ModuleList(_same_conv(channels, kernel_size, 1) for _ in dilation)
        # the activation of the residual stream, a module so that an export can swap in an equal one (no weights)
        self.pre_activation: nn.Module = nn.LeakyReLU(LRELU_SLOPE)
        init_conv_weights(self)

    def forward(self, x: torch.Tensor, x_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = self.pre_activation(x)
            if x_mask is not None:
                xt = xt * x_mask
            xt = F.leaky_relu(conv1(xt), LRELU_SLOPE)
            if x_mask is not None:
                xt = xt * x_mask
            x = conv2(xt) + x
        return x if x_mask is None else x * x_mask


class ResBlock2(nn.Module):
    """``(B, C, T) -> (B, C, T)``: per dilation d, ``x += conv_d(lrelu(x))`` (masked)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in dilation)
        self.pre_activation: nn.Module = nn.LeakyReLU(LRELU_SLOPE)  # as in ResBlock1
        init_conv_weights(self)

    def forward(self, x: torch.Tensor, x_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        for conv in self.convs:
            xt = self.pre_activation(x)
            if x_mask is not None:
                xt = xt * x_mask
            x = conv(xt) + x
        return x if x_mask is None else x * x_mask


def make_resblock(kind: str, channels: int, kernel_size: int, dilation: Sequence[int]) -> nn.Module:
    """``kind`` "1" -> :class:`ResBlock1`, "2" -> :class:`ResBlock2` (the config strings of VITS/HiFi-GAN)."""
    if str(kind) == "1":
        return ResBlock1(channels, kernel_size, dilation)
    if str(kind) == "2":
        return ResBlock2(channels, kernel_size, dilation)
    raise ValueError(f"unknown HiFi-GAN resblock type {kind!r}; expected '1' or '2'")


def upsample_in_float32(up: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``up(x)`` in float32 also under autocast: a transposed convolution repeats its kernel once per input
    sample, so bfloat16's rounding of that kernel is an error with the input's period, which a decoder hears as
    a hum at its frame rate (the joe voice fine-tuned in bf16 on VCTK p228, step 800: 7.8 dB at 86 Hz with bf16
    upsamplers, 5.3 dB with float32 ones)."""
    if not torch.is_autocast_enabled(x.device.type):
        return up(x)
    with torch.autocast(x.device.type, enabled=False):
        return up(x.float())


class HiFiGANGenerator(nn.Module):
    """Features ``(B, in_channels, T)`` (+ optional ``g (B, gin, 1)``) -> waveform ``(B, 1, T * prod(rates))``.

    Args:
        in_channels: input channels (VITS latent size, or mel bins for a mel vocoder).
        resblock: "1" or "2".
        resblock_kernel_sizes, resblock_dilation_sizes: the blocks averaged at every stage.
        upsample_rates, upsample_kernel_sizes: transposed-conv stride and kernel per stage.
        upsample_initial_channel: channels after ``conv_pre``; halved at every stage.
        gin_channels: global condition size (0 = none).
        weight_norm_io: weight-normalise ``conv_pre`` and ``conv_post`` (original HiFi-GAN; VITS: no).
        post_bias: bias on ``conv_post`` (original HiFi-GAN; VITS: no).
        post_lrelu_slope: slope of the LeakyReLU before ``conv_post`` (VITS uses PyTorch's default 0.01).
    """

    def __init__(
        self,
        in_channels: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int = 0,
        weight_norm_io: bool = False,
        post_bias: bool = False,
        post_lrelu_slope: float = 0.01,
    ):
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates {list(upsample_rates)} and upsample_kernel_sizes {list(upsample_kernel_sizes)} "
                "differ in length"
            )
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError(
                f"resblock_kernel_sizes {list(resblock_kernel_sizes)} and resblock_dilation_sizes "
                f"{list(resblock_dilation_sizes)} differ in length"
            )
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.post_lrelu_slope = post_lrelu_slope
        self.hop_length = 1
        for u in upsample_rates:
            self.hop_length *= int(u)

        conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        self.conv_pre = weight_norm(conv_pre) if weight_norm_io else conv_pre
        self.ups = nn.ModuleList(
            weight_norm(
                nn.ConvTranspose1d(
                    upsample_initial_channel // 2**i,
                    upsample_initial_channel // 2 ** (i + 1),
                    k,
                    u,
                    padding=(k - u) // 2,
                )
            )
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes))
        )
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for i in range(self.num_upsamples):
            channels = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(make_resblock(resblock, channels, k, d))
        conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=post_bias)
        self.conv_post = weight_norm(conv_post) if weight_norm_io else conv_post
        init_conv_weights(self.ups)
        if gin_channels > 0:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)
        self.gin_channels = gin_channels

    def forward(self, x: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.tail(self.head(x, g))

    def head(self, x: torch.Tensor, g: Optional[torch.Tensor] = None, stages: int = 0) -> torch.Tensor:
        """``conv_pre`` (+ the condition) and the first ``stages`` up-sampling stages:
        ``(B, in_channels, T) -> (B, C_stages, T * stage_rate(stages))``. ``tail(head(x, g, k), k)`` is the
        forward pass for every k, so a caller may run the tail in time windows (the VITS runtime graphs)."""
        x = self.conv_pre(x)
        if g is not None:
            if self.gin_channels == 0:
                raise ValueError("HiFiGANGenerator: got a global condition g but gin_channels is 0")
            x = x + self.cond(g)
        return self._stages(x, 0, stages)

    def tail(self, x: torch.Tensor, stages: int = 0) -> torch.Tensor:
        """The up-sampling stages from ``stages`` on and ``conv_post``: ``(B, C_stages, N) -> (B, 1, N * hop_length
        / stage_rate(stages))``."""
        x = self._stages(x, stages, self.num_upsamples)
        x = self.conv_post(F.leaky_relu(x, self.post_lrelu_slope))
        return torch.tanh(x)

    def _stages(self, x: torch.Tensor, first: int, end: int) -> torch.Tensor:
        for i in range(first, end):
            x = upsample_in_float32(self.ups[i], F.leaky_relu(x, LRELU_SLOPE))
            x = average_blocks(x, self.resblocks, i, self.num_kernels)
        return x

    def stage_rate(self, stages: int) -> int:
        """Samples per input frame after the first ``stages`` up-sampling stages."""
        return math.prod(int(up.stride[0]) for up in self.ups[:stages])

    def receptive_frames(self) -> int:
        """Input frames on each side that one output sample depends on (an upper bound)."""
        return conv_reach(self.conv_pre) + self.tail_reach(0)

    def tail_reach(self, stages: int) -> int:
        """Input samples of ``tail(., stages)`` on each side that one output sample depends on (an upper bound):
        each layer's reach in samples of its own rate, rounded up to the tail's input samples."""
        reach, rate = 0, 1  # rate: samples per tail input sample where the layer runs
        for i in range(stages, self.num_upsamples):
            up = self.ups[i]
            inputs_read = math.ceil(up.kernel_size[0] / up.stride[0])  # around one output of the transposed conv
            reach += math.ceil(inputs_read / rate)
            rate *= up.stride[0]
            stage = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]  # side by side: the widest
            reach += math.ceil(max(conv_reach(block) for block in stage) / rate)
        return reach + math.ceil(conv_reach(self.conv_post) / rate)

    def fold_weight_norm(self) -> int:
        """Bake weight norm into plain weights for inference; returns the number of layers folded."""
        return fold_weight_norm(self)
