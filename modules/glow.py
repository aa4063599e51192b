"""Glow flow blocks of Glow-TTS (Kim et al., 2020) over channel-first ``(B, C, T)`` tensors.

* :class:`ActNorm` — per-channel affine map with data-dependent initialisation (DDI);
* :class:`InvConvNear` — invertible 1x1 convolution mixing channel groups of size ``n_split``;
* :func:`squeeze` / :func:`unsqueeze` — fold ``n_sqz`` consecutive frames into channels and back;
* :class:`GlowCoupling` — affine coupling whose scale and shift come from a WaveNet on the first half;
* :class:`GlowDecoder` — ``n_blocks`` x [ActNorm, InvConvNear, GlowCoupling] between a squeeze and an unsqueeze;
* :func:`glow_mle_loss`, :func:`log_duration_loss` — the two Glow-TTS training objectives.

Calling convention of modules/flows.py: ``flow(x, x_mask, g=None, reverse=False)`` returns ``(y, logdet (B,))``
forward and just ``x`` in reverse.  Checkpoint names are those of the official code: ActNorm ``logs``/``bias``
``(1, C, 1)``; InvConvNear ``weight (n_split, n_split)``; coupling ``start`` (weight-normed 1x1), ``wn``
(modules/wavenet.py: ``in_layers``, ``res_skip_layers``, ``cond_layer``) and ``end``; decoder ``flows.{3k+i}``.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import nn

from modules.wavenet import WaveNet
from modules.weight_norm import weight_norm

FlowOutput = Union[Tuple[torch.Tensor, torch.Tensor], torch.Tensor]


def _frames(x_mask: torch.Tensor) -> torch.Tensor:
    """Valid frames per item ``(B,)`` of a ``(B, 1, T)`` mask."""
    return torch.sum(x_mask, [1, 2])


class ActNorm(nn.Module):
    """``y = bias + exp(logs) * x`` per channel; log-det ``sum(logs) * frames``.

    With ``ddi=True`` the first forward call sets ``bias``/``logs`` so that this batch's valid frames come out
    with zero mean and unit variance per channel (Kingma & Dhariwal 2018); :meth:`set_ddi` re-arms it.
    """

    def __init__(self, channels: int, ddi: bool = False):
        super().__init__()
        self.channels = channels
        self.initialized = not ddi
        self.logs = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def set_ddi(self, ddi: bool) -> None:
        self.initialized = not ddi

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, x_mask: torch.Tensor) -> None:
        """Data-dependent init from ``x (B, C, T)`` over the frames where ``x_mask (B, 1, T)`` is 1."""
        count = torch.sum(x_mask, [0, 2])
        mean = torch.sum(x * x_mask, [0, 2]) / count
        mean_sq = torch.sum(x * x * x_mask, [0, 2]) / count
        log_std = 0.5 * torch.log(torch.clamp_min(mean_sq - mean**2, 1e-6))
        self.bias.copy_((-mean * torch.exp(-log_std)).view_as(self.bias))
        self.logs.copy_((-log_std).view_as(self.logs))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        if not self.initialized:
            self.initialize(x, x_mask)
            self.initialized = True
        if reverse:
            return (x - self.bias) * torch.exp(-self.logs) * x_mask
        y = (self.bias + torch.exp(self.logs) * x) * x_mask
        return y, torch.sum(self.logs) * _frames(x_mask)


class InvConvNear(nn.Module):
    """Invertible 1x1 convolution applied to channel groups of ``n_split`` (Glow-TTS "InvConvNear").

    The channels are viewed as ``(2, C / n_split, n_split / 2)``; the ``n_split`` channels that share the middle
    index form a group (``n_split / 2`` from each half, so the coupling halves get mixed), and one
    ``(n_split, n_split)`` matrix ``weight`` mixes every group.  Init: a random rotation (QR of a Gaussian matrix,
    first column flipped to make the determinant positive).  Log-det ``log det(W) * C / n_split * frames``.
    """

    def __init__(self, channels: int, n_split: int = 4):
        super().__init__()
        if n_split % 2 != 0 or channels % n_split != 0:
            raise ValueError(f"InvConvNear: n_split must be even and divide channels, got {n_split} and {channels}")
        self.channels = channels
        self.n_split = n_split
        rotation = torch.linalg.qr(torch.randn(n_split, n_split))[0]
        if torch.det(rotation) < 0:
            rotation[:, 0] = -rotation[:, 0]
        self.weight = nn.Parameter(rotation)

    def _to_groups(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, n_split, C / n_split, T)``."""
        b, c, t = x.shape
        x = x.view(b, 2, c // self.n_split, self.n_split // 2, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.n_split, c // self.n_split, t)

    def _from_groups(self, x: torch.Tensor) -> torch.Tensor:
        b, _, width, t = x.shape
        x = x.view(b, 2, self.n_split // 2, width, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.channels, t)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        if x.size(1) != self.channels:
            raise ValueError(f"InvConvNear: expected {self.channels} channels, got {x.size(1)}")
        if reverse:
            # Inverted in at least float32 (half-precision weights would lose the inverse), as the original.
            precision = torch.promote_types(self.weight.dtype, torch.float32)
            weight = torch.linalg.inv(self.weight.to(precision)).to(self.weight.dtype)
        else:
            weight = self.weight
        y = torch.einsum("ij,bjct->bict", weight, self._to_groups(x))
        y = self._from_groups(y) * x_mask
        if reverse:
            return y
        logdet = torch.logdet(self.weight) * (self.channels / self.n_split) * _frames(x_mask)
        return y, logdet


def squeeze(x: torch.Tensor, x_mask: torch.Tensor, n_sqz: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, T) -> (B, C * n_sqz, T // n_sqz)``: channel ``s * C + c`` holds frame ``n_sqz * t + s``.

    A trailing incomplete group of frames is dropped; a squeezed frame is valid when its last frame is.
    """
    b, c, t = x.shape
    t = (t // n_sqz) * n_sqz
    x = x[:, :, :t].reshape(b, c, t // n_sqz, n_sqz).permute(0, 3, 1, 2).reshape(b, c * n_sqz, t // n_sqz)
    x_mask = x_mask[:, :, n_sqz - 1:t:n_sqz]
    return x * x_mask, x_mask


def unsqueeze(x: torch.Tensor, x_mask: torch.Tensor, n_sqz: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`squeeze`: ``(B, C, T) -> (B, C / n_sqz, T * n_sqz)`` and its mask."""
    b, c, t = x.shape
    x = x.reshape(b, n_sqz, c // n_sqz, t).permute(0, 2, 3, 1).reshape(b, c // n_sqz, t * n_sqz)
    x_mask = x_mask.repeat_interleave(n_sqz, dim=2)
    return x * x_mask, x_mask


class GlowCoupling(nn.Module):
    """Affine coupling: ``x1 <- m(x0) + exp(logs(x0)) * x1`` with ``(m, logs)`` from a WaveNet on ``x0``.

    ``start`` (weight-normed 1x1) lifts the first half to ``hidden_channels``, ``wn`` is a WaveNet with the
    Glow-TTS dropout placement (before the gate), ``end`` (zero-initialised: the coupling starts as the
    identity) outputs ``m`` (first half) and ``logs``.  ``sigmoid_scale`` bounds the scale:
    ``logs <- log(1e-6 + sigmoid(logs + 2))``.
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
        sigmoid_scale: bool = False,
    ):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"GlowCoupling: channels must be even, got {channels}")
        self.half = channels // 2
        self.sigmoid_scale = sigmoid_scale
        self.start = weight_norm(nn.Conv1d(self.half, hidden_channels, 1))
        self.end = nn.Conv1d(hidden_channels, channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.wn = WaveNet(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels,
                          p_dropout=p_dropout, dropout_before_gate=True)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        x0, x1 = x[:, :self.half], x[:, self.half:]
        h = self.wn(self.start(x0) * x_mask, x_mask, g=g)
        stats = self.end(h)
        m, logs = stats[:, :self.half], stats[:, self.half:]
        if self.sigmoid_scale:
            logs = torch.log(1e-6 + torch.sigmoid(logs + 2))
        if reverse:
            return torch.cat([x0, (x1 - m) * torch.exp(-logs) * x_mask], 1)
        y1 = (m + torch.exp(logs) * x1) * x_mask
        return torch.cat([x0, y1], 1), torch.sum(logs * x_mask, [1, 2])


class GlowDecoder(nn.Module):
    """Glow-TTS ``FlowSpecDecoder``: frames ``(B, C, T)`` <-> latent ``(B, C, T)``.

    Squeeze by ``n_sqz`` (``T`` must be a multiple of it), then ``n_blocks`` x [ActNorm, InvConvNear, GlowCoupling]
    on ``C * n_sqz`` channels, then unsqueeze.  ``g (B, gin, 1)`` conditions every coupling.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_blocks: int,
        n_layers: int,
        p_dropout: float = 0.0,
        n_split: int = 4,
        n_sqz: int = 2,
        sigmoid_scale: bool = False,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.n_sqz = n_sqz
        channels = in_channels * n_sqz
        self.flows = nn.ModuleList()
        for _ in range(n_blocks):
            self.flows.append(ActNorm(channels))
            self.flows.append(InvConvNear(channels, n_split))
            self.flows.append(GlowCoupling(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                           gin_channels=gin_channels, p_dropout=p_dropout, sigmoid_scale=sigmoid_scale))

    def set_ddi(self, ddi: bool) -> None:
        """Arm (or disarm) the data-dependent init of every ActNorm for the next forward pass."""
        for flow in self.flows:
            if isinstance(flow, ActNorm):
                flow.set_ddi(ddi)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False) -> FlowOutput:
        """``x (B, C, T)``, ``x_mask (B, 1, T)`` -> ``(z (B, C, T), logdet (B,))``; reverse -> ``x``."""
        if x.size(-1) % self.n_sqz != 0:
            raise ValueError(f"GlowDecoder: frames ({x.size(-1)}) must be a multiple of n_sqz={self.n_sqz}")
        mask = x_mask
        if self.n_sqz > 1:
            x, mask = squeeze(x, x_mask, self.n_sqz)
        if reverse:
            for flow in reversed(self.flows):
                x = flow(x, mask, g=g, reverse=True)
        else:
            logdet = torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
            for flow in self.flows:
                x, step_logdet = flow(x, mask, g=g)
                logdet = logdet + step_logdet
        if self.n_sqz > 1:
            x, _ = unsqueeze(x, mask, self.n_sqz)
        return x if reverse else (x, logdet)


def glow_mle_loss(z: torch.Tensor, m: torch.Tensor, logs: torch.Tensor, logdet: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per valid element (nats), Glow-TTS ``mle_loss``.

    ``z, m, logs (B, C, T)`` (already masked), ``logdet (B,)``, ``mask (B, 1, T)``:
    ``[sum(logs) + 0.5 sum(exp(-2 logs)(z - m)^2) - sum(logdet)] / (C * valid frames) + 0.5 log(2 pi)``.
    """
    nll = torch.sum(logs) + 0.5 * torch.sum(torch.exp(-2 * logs) * (z - m) ** 2) - torch.sum(logdet)
    return nll / torch.sum(torch.ones_like(z) * mask) + 0.5 * math.log(2 * math.pi)


def log_duration_loss(logw: torch.Tensor, logw_target: torch.Tensor, x_lengths: torch.Tensor) -> torch.Tensor:
    """Glow-TTS ``duration_loss``: ``sum((logw - logw_target)^2) / sum(x_lengths)`` (masked ``(B, 1, Tx)`` inputs)."""
    return torch.sum((logw - logw_target) ** 2) / torch.sum(x_lengths)
