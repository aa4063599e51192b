"""WaveGrad noise predictor (Chen et al. 2020): UBlocks on the conditioning, DBlocks on the noisy waveform, FiLM.

``WaveGradDecoder(y_noisy (B, L), cond (B, C, T), noise_level (B, 1)) -> eps (B, L)`` with ``L = T * prod(factors)``.

* The DBlock stream downsamples the noisy waveform by ``factors[1:]`` reversed; after its pre-conv and after each
  DBlock a FiLM computes ``(scale, shift)`` from the features plus a sinusoidal encoding of
  ``pos_emb_scale * noise_level``; the UBlock at the matching resolution uses them in every modulated conv.
* The UBlock stream upsamples the conditioning by ``factors`` (first factor first).
* Resampling is linear interpolation (``align_corners=False``), convolutions are orthogonally initialised, as in
  the WaveGrad 2 public code (ivanvovk/maum-ai lineage); lmnt's vocoder differs (nearest resampling, one fused
  FiLM conv, unscaled noise level) and its weights do not fit here.
* ``blocks_per_stage=2`` follows each UBlock/DBlock with a same-resolution block of the same kind (maum-ai's
  "large" decoder).

Submodule names follow maum-ai/wavegrad2 (minus its ``conv1d`` wrapper level) so its checkpoints map 1:1.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

_SLOPE = 0.2


def _conv(c_in: int, c_out: int, kernel: int, dilation: int = 1) -> nn.Conv1d:
    conv = nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
    nn.init.orthogonal_(conv.weight)
    return conv


class Resample(nn.Module):
    """Linear interpolation by an integer factor: ``(B, C, T) -> (B, C, T*f)`` or ``(B, C, T//f)`` (``down``)."""

    def __init__(self, factor: int, down: bool = False):
        super().__init__()
        self.factor, self.down = factor, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.size(-1) // self.factor if self.down else x.size(-1) * self.factor
        return F.interpolate(x, size=size, mode="linear", align_corners=False)


def noise_level_encoding(noise_level: torch.Tensor, channels: int, scale: float) -> torch.Tensor:
    """Sinusoidal encoding ``(B, channels)`` of ``scale * noise_level`` (``(B, 1)`` or ``(B,)``)."""
    half = channels // 2
    freqs = 1e-4 ** (torch.arange(half, dtype=torch.float32, device=noise_level.device) / float(half))
    arg = scale * noise_level.reshape(-1, 1).to(freqs.dtype) * freqs.unsqueeze(0)
    return torch.cat([arg.sin(), arg.cos()], dim=-1).to(noise_level.dtype)


class FiLM(nn.Module):
    """``(scale, shift)`` each ``(B, C_out, T)`` from features ``(B, C_in, T)`` and the noise level."""

    def __init__(self, in_channels: int, out_channels: int, pos_emb_scale: float):
        super().__init__()
        if in_channels % 2:
            raise ValueError(f"FiLM: the noise-level encoding needs an even channel count, got {in_channels}")
        self.pos_emb_scale = pos_emb_scale
        self.signal_conv = nn.Sequential(_conv(in_channels, in_channels, 3), nn.LeakyReLU(_SLOPE))
        self.scale_conv = _conv(in_channels, out_channels, 3)
        self.shift_conv = _conv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.signal_conv(x) + noise_level_encoding(noise_level, x.size(1), self.pos_emb_scale).unsqueeze(-1)
        return self.scale_conv(h), self.shift_conv(h)


class ModulatedConv(nn.Module):
    """``conv(LReLU(scale * x + shift))`` — the FiLM-modulated unit of a UBlock."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.convolution = _conv(channels, channels, 3, dilation)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.convolution(F.leaky_relu(scale * x + shift, _SLOPE))


class UBlock(nn.Module):
    """Upsampling block ``(B, C_in, T) -> (B, C_out, T*factor)``; ``factor=1`` keeps the length.

    Two residual units: ``[LReLU, up, conv(d0), mod(d1)] + up(conv1x1)`` then ``x + mod(d3)(mod(d2)(x))``.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: Sequence[int]):
        super().__init__()
        if len(dilations) != 4:
            raise ValueError(f"UBlock: 4 dilations expected, got {list(dilations)}")
        first = [nn.LeakyReLU(_SLOPE)] + ([Resample(factor)] if factor > 1 else [])
        first.append(_conv(in_channels, out_channels, 3, dilations[0]))
        branch = "upsampling" if factor > 1 else "noupsampling"
        self.first_block_main_branch = nn.ModuleDict({branch: nn.Sequential(*first),
                                                      "modulation": ModulatedConv(out_channels, dilations[1])})
        residual: List[nn.Module] = [_conv(in_channels, out_channels, 1)] + ([Resample(factor)] if factor > 1 else [])
        self.first_block_residual_branch = nn.Sequential(*residual)
        self.second_block_main_branch = nn.ModuleDict(
            {f"modulation_{k}": ModulatedConv(out_channels, dilations[2 + k]) for k in range(2)})
        self.branch = branch

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        main = self.first_block_main_branch
        out = main["modulation"](main[self.branch](x), scale, shift) + self.first_block_residual_branch(x)
        second = self.second_block_main_branch
        return out + second["modulation_1"](second["modulation_0"](out, scale, shift), scale, shift)


class LargeUBlock(UBlock):
    """A UBlock followed by a same-resolution one (``upsampling_basic_block`` + this block's own units)."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: Sequence[int]):
        super().__init__(out_channels, out_channels, 1, dilations)
        self.upsampling_basic_block = UBlock(in_channels, out_channels, factor, dilations)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return super().forward(self.upsampling_basic_block(x, scale, shift), scale, shift)


class ConvUnit(nn.Module):
    """``conv(LReLU(x))``."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int):
        super().__init__()
        self.convolution = _conv(in_channels, out_channels, 3, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolution(F.leaky_relu(x, _SLOPE))


class DBlock(nn.Module):
    """Downsampling block ``(B, C_in, T) -> (B, C_out, T//factor)``: ``[down, units] + down(conv1x1)``."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: Sequence[int]):
        super().__init__()
        sizes = [in_channels] + [out_channels] * len(dilations)
        units = [ConvUnit(sizes[k], sizes[k + 1], d) for k, d in enumerate(dilations)]
        down: List[nn.Module] = [Resample(factor, down=True)] if factor > 1 else []
        self.main_branch = nn.Sequential(*down, *units)
        self.residual_branch = nn.Sequential(_conv(in_channels, out_channels, 1), *down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main_branch(x) + self.residual_branch(x)


class LargeDBlock(DBlock):
    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: Sequence[int]):
        super().__init__(out_channels, out_channels, 1, dilations)
        self.downsampling_basic_block = DBlock(in_channels, out_channels, factor, dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.downsampling_basic_block(x))


class WaveGradDecoder(nn.Module):
    """Noise predictor; see the module doc. Channel lists: ``up_channels`` one per factor, ``down_channels`` one
    per factor but the first (the DBlocks mirror ``factors[1:]`` reversed)."""

    def __init__(
        self,
        cond_channels: int,
        factors: Sequence[int] = (5, 5, 3, 2, 2),
        up_preconv_channels: int = 768,
        up_channels: Sequence[int] = (512, 512, 256, 128, 128),
        up_dilations: Sequence[Sequence[int]] = ((1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 1, 2), (1, 2, 1, 2)),
        down_preconv_channels: int = 32,
        down_channels: Sequence[int] = (128, 128, 256, 512),
        down_dilations: Sequence[Sequence[int]] = ((1, 2, 4),) * 4,
        pos_emb_scale: float = 5000.0,
        blocks_per_stage: int = 1,
    ):
        super().__init__()
        n = len(factors)
        if len(up_channels) != n or len(up_dilations) != n:
            raise ValueError(f"decoder: {n} factors need {n} up_channels and up_dilations, got "
                             f"{len(up_channels)} and {len(up_dilations)}")
        if len(down_channels) != n - 1 or len(down_dilations) != n - 1:
            raise ValueError(f"decoder: {n} factors need {n - 1} down_channels and down_dilations, got "
                             f"{len(down_channels)} and {len(down_dilations)}")
        if blocks_per_stage not in (1, 2):
            raise ValueError(f"decoder.blocks_per_stage must be 1 or 2, got {blocks_per_stage}")
        ublock, dblock = (UBlock, DBlock) if blocks_per_stage == 1 else (LargeUBlock, LargeDBlock)
        self.hop_length = math.prod(factors)
        self.ublock_preconv = _conv(cond_channels, up_preconv_channels, 3)
        up_in = [up_preconv_channels] + list(up_channels[:-1])
        self.ublocks = nn.ModuleList(
            [ublock(i, o, f, d) for i, o, f, d in zip(up_in, up_channels, factors, up_dilations)])
        self.ublock_postconv = _conv(up_channels[-1], 1, 3)
        self.dblock_preconv = _conv(1, down_preconv_channels, 5)
        down_in = [down_preconv_channels] + list(down_channels[:-1])
        down_factors = list(factors[1:])[::-1]
        self.dblocks = nn.ModuleList(
            [dblock(i, o, f, d) for i, o, f, d in zip(down_in, down_channels, down_factors, down_dilations)])
        film_in = [down_preconv_channels] + list(down_channels)
        self.films = nn.ModuleList(
            [FiLM(i, o, pos_emb_scale) for i, o in zip(film_in, list(up_channels)[::-1])])

    def forward(self, y_noisy: torch.Tensor, cond: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        """``y_noisy (B, L)``, ``cond (B, C, T)``, ``noise_level (B, 1)`` -> predicted noise ``(B, L)``."""
        if y_noisy.size(-1) != cond.size(-1) * self.hop_length:
            raise ValueError(f"decoder: waveform length {y_noisy.size(-1)} != {cond.size(-1)} frames x hop "
                             f"{self.hop_length}")
        h = self.dblock_preconv(y_noisy.unsqueeze(1))
        stats = [self.films[0](h, noise_level)]
        for dblock, film in zip(self.dblocks, self.films[1:]):
            h = dblock(h)
            stats.append(film(h, noise_level))
        out = self.ublock_preconv(cond)
        for ublock, (scale, shift) in zip(self.ublocks, reversed(stats)):
            out = ublock(out, scale, shift)
        return self.ublock_postconv(out).squeeze(1)
