"""Invertible layers of the VITS family (normalising flows over channel-first ``(B, C, T)`` tensors).

Calling convention (kept from the original code so flows can be chained in checkpoint order):
``flow(x, x_mask, g=None, reverse=False)`` returns ``(y, logdet (B,))`` forward and just ``x`` in reverse.

Checkpoint names: ``ElementwiseAffine.m/logs`` ``(C, 1)``; ``ConvFlow.pre/convs/proj`` with the depth-separable
stack ``convs.{convs_sep,convs_1x1,norms_1,norms_2}.{i}``; ``ResidualCouplingLayer.pre/enc/post`` (``enc`` is the
WaveNet of modules/wavenet.py); ``ResidualCouplingBlock.flows.{0,2,4,...}`` hold the couplings, the odd
indices the parameter-free ``Flip``.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from modules.commons import get_padding
from modules.spline import piecewise_rational_quadratic_transform
from modules.transformer import LayerNorm
from modules.wavenet import WaveNet

FlowOutput = Union[Tuple[torch.Tensor, torch.Tensor], torch.Tensor]


class Flip(nn.Module):
    """Reverse the channel order (lets the next coupling transform the other half); log-det 0."""

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        x = torch.flip(x, [1])
        if reverse:
            return x
        return x, torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class Log(nn.Module):
    """``y = log(max(x, 1e-5))`` on valid frames (durations -> log-durations); inverse ``exp``."""

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        if reverse:
            return torch.exp(x) * x_mask
        y = torch.log(torch.clamp_min(x, 1e-5)) * x_mask
        return y, torch.sum(-y, [1, 2])


class ElementwiseAffine(nn.Module):
    """Per-channel affine map ``y = m + exp(logs) * x`` with parameters ``m``, ``logs`` of shape ``(C, 1)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        if reverse:
            return (x - self.m) * torch.exp(-self.logs) * x_mask
        y = (self.m + torch.exp(self.logs) * x) * x_mask
        return y, torch.sum(self.logs * x_mask, [1, 2])


class DDSConv(nn.Module):
    """Dilated depth-separable convolution stack (VITS ``DDSConv``).

    Layer ``i``: depthwise conv (dilation ``kernel_size ** i``) -> LayerNorm -> GELU -> 1x1 conv -> LayerNorm
    -> GELU -> dropout, added residually. ``g`` (already projected to ``channels``) is added to the input.
    """

    def __init__(self, channels: int, kernel_size: int, n_layers: int, p_dropout: float = 0.0):
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(n_layers):
            dilation = kernel_size**i
            self.convs_sep.append(
                nn.Conv1d(
                    channels, channels, kernel_size, groups=channels, dilation=dilation,
                    padding=get_padding(kernel_size, dilation),
                )
            )
            self.convs_1x1.append(nn.Conv1d(channels, channels, 1))
            self.norms_1.append(LayerNorm(channels))
            self.norms_2.append(LayerNorm(channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, C, T)``, ``x_mask (B, 1, T)``, ``g (B, C, T or 1)`` -> ``(B, C, T)`` masked."""
        if g is not None:
            x = x + g
        for i in range(self.n_layers):
            y = self.convs_sep[i](x * x_mask)
            y = F.gelu(self.norms_1[i](y))
            y = self.convs_1x1[i](y)
            y = F.gelu(self.norms_2[i](y))
            x = x + self.drop(y)
        return x * x_mask


class ConvFlow(nn.Module):
    """Neural-spline coupling: the first half of the channels parameterises an RQ spline on the second half.

    ``proj`` outputs ``3 * num_bins - 1`` values per channel and frame: bin widths, bin heights (both scaled by
    ``1/sqrt(filter_channels)``) and ``num_bins - 1`` inner knot derivatives; identity tails outside
    ``[-tail_bound, tail_bound]``.
    """

    def __init__(
        self,
        in_channels: int,
        filter_channels: int,
        kernel_size: int,
        n_layers: int,
        num_bins: int = 10,
        tail_bound: float = 5.0,
    ):
        super().__init__()
        self.filter_channels = filter_channels
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.half_channels = in_channels // 2
        self.pre = nn.Conv1d(self.half_channels, filter_channels, 1)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers, p_dropout=0.0)
        self.proj = nn.Conv1d(filter_channels, self.half_channels * (num_bins * 3 - 1), 1)
        # Start as the identity transform.
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        x0, x1 = torch.split(x, [self.half_channels, x.size(1) - self.half_channels], 1)
        h = self.convs(self.pre(x0), x_mask, g=g)
        h = self.proj(h) * x_mask
        batch, channels, frames = x0.shape
        h = h.reshape(batch, channels, -1, frames).permute(0, 1, 3, 2)  # (B, C/2, T, 3K-1)
        scale = math.sqrt(self.filter_channels)
        widths = h[..., : self.num_bins] / scale
        heights = h[..., self.num_bins : 2 * self.num_bins] / scale
        derivatives = h[..., 2 * self.num_bins :]
        x1, logabsdet = piecewise_rational_quadratic_transform(
            x1, widths, heights, derivatives, inverse=reverse, tails="linear", tail_bound=self.tail_bound
        )
        x = torch.cat([x0, x1], 1) * x_mask
        if reverse:
            return x
        return x, torch.sum(logabsdet * x_mask, [1, 2])


class ResidualCouplingLayer(nn.Module):
    """Affine coupling with a WaveNet estimator: ``x1 <- m(x0) + x1 * exp(logs(x0))`` (``mean_only``: logs=0)."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        p_dropout: float = 0.0,
        gin_channels: int = 0,
        mean_only: bool = False,
    ):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"ResidualCouplingLayer: channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.mean_only = mean_only
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels, p_dropout=p_dropout)
        self.post = nn.Conv1d(hidden_channels, self.half_channels * (1 if mean_only else 2), 1)
        # Start as the identity transform.
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        stats = self.post(h) * x_mask
        if self.mean_only:
            m, logs = stats, torch.zeros_like(stats)
        else:
            m, logs = torch.split(stats, [self.half_channels] * 2, 1)
        if reverse:
            x1 = (x1 - m) * torch.exp(-logs) * x_mask
            return torch.cat([x0, x1], 1)
        x1 = m + x1 * torch.exp(logs) * x_mask
        return torch.cat([x0, x1], 1), torch.sum(logs, [1, 2])


class ResidualCouplingBlock(nn.Module):
    """VITS prior/posterior flow: ``n_flows`` x [ResidualCouplingLayer, Flip] (couplings at even indices)."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
        mean_only: bool = True,
    ):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                    gin_channels=gin_channels, mean_only=mean_only,
                )
            )
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> torch.Tensor:
        """``x (B, C, T)`` -> ``(B, C, T)``; ``reverse`` applies the inverse flows in reverse order."""
        if reverse:
            for flow in reversed(self.flows):
                x = flow(x, x_mask, g=g, reverse=True)
            return x
        for flow in self.flows:
            x, _ = flow(x, x_mask, g=g, reverse=False)
        return x
