"""Anti-aliased activations (BigVGAN's "alias-free" design, after StyleGAN3).

A pointwise nonlinearity creates harmonics above Nyquist; applying it at twice the sampling rate between a
Kaiser-windowed sinc interpolator and a matching low-pass decimator keeps them from folding back.

Layout and checkpoint names follow the official HierSpeech++/SpeechSR/BigVGAN modules:
``Activation1d.upsample.filter`` and ``Activation1d.downsample.lowpass.filter`` are persistent (1, 1, K)
buffers, ``Activation1d.act`` holds the activation's parameters. Official checkpoints store the filters
(rounded to the checkpoint's precision), so they are loaded, not recomputed, for bit-faithful outputs.

Two numerically equivalent forward paths:

* the *reference* path (default) is the textbook one: replicate-pad, zero-stuffing transposed conv,
  activation, replicate-pad, strided low-pass conv;
* the *polyphase* path (``Activation1d.polyphase = True`` or :func:`set_polyphase`) computes the two output
  phases of the 2x interpolator directly with a 7-tap 1->2 channel conv, applies the activation on both
  phases, and decimates with one 2->1 channel conv, reproducing the replicate padding of the 2x signal
  exactly. Same sums, fewer multiplications by zero and fewer memory passes (only for ratio 2, K = 12).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from modules.activations import SnakeBeta


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass filter, normalised to unit DC gain.

    Args:
        cutoff: cutoff frequency as a fraction of the sampling rate (0 < cutoff <= 0.5).
        half_width: transition-band half width, same unit.
        kernel_size: number of taps K.
    Returns:
        (1, 1, K) filter.
    """
    if not 0.0 <= cutoff <= 0.5:
        raise ValueError(f"kaiser_sinc_filter1d: cutoff must be in [0, 0.5], got {cutoff}")
    even = kernel_size % 2 == 0
    half = kernel_size // 2
    # Kaiser's empirical formulas: attenuation A (dB) from the transition width, then the window beta.
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    # symmetric time axis centred between the two middle taps for even K
    time = torch.arange(-half, half) + 0.5 if even else torch.arange(kernel_size) - half
    if cutoff == 0:
        return torch.zeros(1, 1, kernel_size)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    taps = taps / taps.sum()
    return taps.view(1, 1, kernel_size)


class LowPassFilter1d(nn.Module):
    """Depthwise Kaiser-sinc low-pass with stride; (B, C, T) -> (B, C, ceil(T / stride))."""

    def __init__(self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1, kernel_size: int = 12):
        super().__init__()
        if cutoff < 0.0 or cutoff > 0.5:
            raise ValueError(f"LowPassFilter1d: cutoff must be in [0, 0.5], got {cutoff}")
        self.stride = stride
        self.kernel_size = kernel_size
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class UpSample1d(nn.Module):
    """Kaiser-sinc interpolation by an integer ratio; (B, C, T) -> (B, C, ratio * T)."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.pad = self.kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (self.kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, self.kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        # the zero-stuffed signal has 1/ratio of the energy: scale back by ratio
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio,
                                            groups=channels)
        return x[..., self.pad_left:-self.pad_right]


class DownSample1d(nn.Module):
    """Anti-aliasing low-pass then decimation by ``ratio``; (B, C, T) -> (B, C, T / ratio)."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, stride=ratio, kernel_size=self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


def _polyphase_up_weight(up_filter: torch.Tensor) -> torch.Tensor:
    """(1,1,12) interpolation filter -> (2,1,7) conv weight giving the even/odd output phases.

    With the input replicate-padded by 3, even output 2t is sum_j 2 f[11-2j] x[t+j-3] (j = 0..5) and odd
    output 2t+1 is sum_j 2 f[12-2j] x[t+j-3] (j = 1..6); the ratio 2 restores the zero-stuffing energy.
    """
    f = up_filter.reshape(12)
    w = f.new_zeros(2, 1, 7)
    w[0, 0, :6] = 2.0 * f.flip(0)[0::2]          # f[11], f[9], ..., f[1]
    w[1, 0, 1:] = 2.0 * f.flip(0)[1::2]          # f[10], f[8], ..., f[0]
    return w


def _polyphase_down_weight(down_filter: torch.Tensor) -> torch.Tensor:
    """(1,1,12) low-pass -> (1,2,7) weight over the [even, odd] phases each padded by 3 on both sides.

    Output t = sum_i f[2i+1] even[t+i-2] + sum_i f[2i] odd[t+i-3] (i = 0..5).
    """
    f = down_filter.reshape(12)
    w = f.new_zeros(1, 2, 7)
    w[0, 0, 1:] = f[1::2]
    w[0, 1, :6] = f[0::2]
    return w


class Activation1d(nn.Module):
    """2x up-sample -> activation -> 2x down-sample; (B, C, T) -> (B, C, T).

    Args:
        activation: elementwise module applied at the doubled rate (e.g. ``SnakeBeta``); kept as ``act``.
        up_ratio, down_ratio: resampling ratios (2 in every released model).
        up_kernel_size, down_kernel_size: filter taps (12 in every released model).
    """

    def __init__(self, activation: nn.Module, up_ratio: int = 2, down_ratio: int = 2,
                 up_kernel_size: int = 12, down_kernel_size: int = 12):
        super().__init__()
        self.up_ratio = up_ratio
        self.down_ratio = down_ratio
        self.act = activation
        self.upsample = UpSample1d(up_ratio, up_kernel_size)
        self.downsample = DownSample1d(down_ratio, down_kernel_size)
        # polyphase is only derived for the released geometry
        self.polyphase_supported = (up_ratio, down_ratio, up_kernel_size, down_kernel_size) == (2, 2, 12, 12)
        self.polyphase = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.polyphase and self.polyphase_supported:
            return self._forward_polyphase(x)
        return self.downsample(self.act(self.upsample(x)))

    def _activate(self, phases: torch.Tensor) -> torch.Tensor:
        """Activation on (B, C, 2, L); SnakeBeta is done in place to save memory passes."""
        act = self.act
        if isinstance(act, SnakeBeta) and not torch.is_grad_enabled():
            freq, inv_mag = act.coefficients()                      # (C, 1) each
            freq, inv_mag = freq.unsqueeze(-1), inv_mag.unsqueeze(-1)
            out = torch.mul(phases, freq).sin_().square_().mul_(inv_mag)
            return out.add_(phases)
        b, c, two, length = phases.shape
        return act(phases.reshape(b, c, two * length)).reshape(b, c, two, length)

    def _forward_polyphase(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        up_w = _polyphase_up_weight(self.upsample.filter).to(x.dtype)
        down_w = _polyphase_down_weight(self.downsample.lowpass.filter).to(x.dtype)
        xp = F.pad(x.reshape(b * c, 1, t), (3, 3), mode="replicate")
        phases = F.conv1d(xp, up_w)                                  # (B*C, 2, T): even, odd samples
        # replicate padding of the 2x signal: its first sample is even[0], its last is odd[T-1]
        first = phases[:, 0:1, 0:1].expand(-1, 2, 3)
        last = phases[:, 1:2, t - 1:t].expand(-1, 2, 3)
        phases = torch.cat([first, phases, last], dim=2).reshape(b, c, 2, t + 6)
        phases = self._activate(phases)
        y = F.conv1d(phases.reshape(b * c, 2, t + 6), down_w)       # (B*C, 1, T)
        return y.reshape(b, c, t)


def set_polyphase(model: nn.Module, enabled: bool = True) -> int:
    """Switch every supported :class:`Activation1d` in ``model`` to the polyphase path; returns the count."""
    count = 0
    for module in model.modules():
        if isinstance(module, Activation1d) and module.polyphase_supported:
            module.polyphase = enabled
            count += 1
    return count
