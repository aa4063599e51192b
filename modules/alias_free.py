"""Anti-aliased activations (BigVGAN's "alias-free" design, after StyleGAN3).

A pointwise nonlinearity creates harmonics above Nyquist; applying it at twice the sampling rate between a
Kaiser-windowed sinc interpolator and a matching low-pass decimator keeps them from folding back.

Layout and checkpoint names follow the official HierSpeech++/SpeechSR/BigVGAN modules:
``Activation1d.upsample.filter`` and ``Activation1d.downsample.lowpass.filter`` are persistent (1, 1, K)
buffers, ``Activation1d.act`` holds the activation's parameters. Official checkpoints store the filters
(rounded to the checkpoint's precision), so they are loaded, not recomputed, for bit-faithful outputs.

Numerically equivalent forward paths:

* the *reference* path (default) is the textbook one: replicate-pad, zero-stuffing transposed conv,
  activation, replicate-pad, strided low-pass conv;
* the *polyphase* path (``Activation1d.polyphase = True`` or :func:`set_polyphase`; CPU tensors only) computes
  the two output phases of the 2x interpolator directly (no multiplications by stuffed zeros) and runs both filters as
  block-Toeplitz matrix products, reproducing the replicate padding of the 2x signal exactly. Same sums up
  to float rounding (< 1e-6 on unit-scale signals); only for ratio 2 and K = 12 (every released model).
  With autograd, or with another activation (Snake), it allocates its tensors as usual. Without autograd a
  SnakeBeta activation takes a third path with the same arithmetic: SnakeBeta in place, every doubled-rate
  tensor in per-thread scratch buffers reused by every activation: fresh multi-megabyte tensors were
  measured to cost glibc page faults (mmap/trim) that, depending on the process's heap history, added up
  to ~0.5 s to a 5 s VC decode.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F
from torch import nn

from modules import fused_snake
from modules.activations import SnakeBeta
from modules.commons import cached_derived


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
        channels = int(x.shape[1])  # a Python int: an exported graph keeps the kernel shape static
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
        channels = int(x.shape[1])  # a Python int: an exported graph keeps the kernel shape static
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


def _polyphase_up_taps(up_filter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Even/odd phase taps of the 2x interpolator over the input replicate-padded by 3.

    Output 2t is sum_j 2 f[11-2j] x[t+j-3] (j = 0..5) and output 2t+1 is sum_j 2 f[12-2j] x[t+j-3]
    (j = 1..6); the factor 2 restores the energy of zero stuffing. Returns two (7,) tap vectors.
    """
    f = up_filter.reshape(12)
    even, odd = f.new_zeros(7), f.new_zeros(7)
    even[:6] = 2.0 * f.flip(0)[0::2]             # f[11], f[9], ..., f[1]
    odd[1:] = 2.0 * f.flip(0)[1::2]              # f[10], f[8], ..., f[0]
    return even, odd


def _block_toeplitz_up(up_filter: torch.Tensor, block: int) -> torch.Tensor:
    """(block + 6, 2 * block) matrix: a window of the padded input -> 2*block interleaved output samples."""
    even, odd = _polyphase_up_taps(up_filter)
    m = up_filter.new_zeros(block + 6, 2 * block)
    for t in range(block):
        m[t:t + 7, 2 * t] = even
        m[t:t + 7, 2 * t + 1] = odd
    return m


def _block_toeplitz_down(down_filter: torch.Tensor, block: int) -> torch.Tensor:
    """(2 * block + 10, block) matrix: a window of the padded 2x signal -> block decimated samples."""
    f = down_filter.reshape(12)
    m = down_filter.new_zeros(2 * block + 10, block)
    for t in range(block):
        m[2 * t:2 * t + 12, t] = f
    return m


class _Workspace:
    """Per-thread scratch memory reused by every no-grad polyphase activation (no page faults on fresh tensors).

    Buffers made under ``torch.inference_mode`` cannot be written outside it, so the mode is part of the key.
    """

    _local = threading.local()

    @classmethod
    def get(cls, slot: int, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        store = cls._local.__dict__.setdefault("buffers", {})
        key = (slot, dtype, device, torch.is_inference_mode_enabled())
        buf = store.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(int(numel * 1.25) + 64, dtype=dtype, device=device)
            store[key] = buf
        return buf[:numel]


def _replicate_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Replicate-pad the last dim with one concatenation (faster than F.pad's replicate kernel on CPU)."""
    return torch.cat([x[..., :1].expand(*x.shape[:-1], left), x, x[..., -1:].expand(*x.shape[:-1], right)], dim=-1)


class Activation1d(nn.Module):
    """2x up-sample -> activation -> 2x down-sample; (B, C, T) -> (B, C, T).

    Args:
        activation: elementwise module applied at the doubled rate (e.g. ``SnakeBeta``); kept as ``act``.
        up_ratio, down_ratio: resampling ratios (2 in every released model).
        up_kernel_size, down_kernel_size: filter taps (12 in every released model).
    """

    # samples per block of the polyphase path: (16+6)x32 and (42)x16 GEMM operands keep the multiplications
    # by the filters' zero bands small while giving BLAS usable matrix shapes
    BLOCK = 16

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
        # Polyphase is a CPU path: on a GPU its many small matrix products lost to the reference convolutions
        # (HierSpeech++ VC synthesis on an H200: 0.100 s against 0.071 s; benchmarks/cuda_check.sh).
        if not (self.polyphase and self.polyphase_supported) or x.device.type != "cpu":
            return self.downsample(self.act(self.upsample(x)))
        # the scratch path runs SnakeBeta in place: only when nothing needs the intermediates for autograd
        if isinstance(self.act, SnakeBeta) and not torch.is_grad_enabled():
            return self._forward_polyphase_scratch(x)
        return self._forward_polyphase(x)

    def fused_supported(self) -> bool:
        """Whether :meth:`forward_channels_last` can run (SnakeBeta, released geometry, numba present)."""
        return self.polyphase_supported and isinstance(self.act, SnakeBeta) and fused_snake.available()

    def forward_channels_last(self, x: torch.Tensor, scratch: bool = False,
                              out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Inference on channels-last memory with the fused kernel (modules/fused_snake.py).

        x: (B, C, 1, T) float32 or bfloat16 CPU in ``torch.channels_last`` memory format, i.e. (B, T, C) in
        memory; returns the same layout in ``out_dtype`` (float32 or bfloat16; float32 arithmetic either way).
        Same arithmetic as :meth:`forward` up to float rounding. With ``scratch`` the result lives in a
        per-thread buffer that the next ``scratch`` call overwrites (for callers that consume it at once, like
        the AMP blocks' convolutions; it spares a fresh multi-megabyte tensor).
        """
        b, c, _, t = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(b, t, c)  # a view when x is channels-last
        up, down = self.upsample.filter, self.downsample.lowpass.filter
        # the kernel's coefficient arrays, rebuilt only when a filter or the activation's parameters change
        coefficients = cached_derived(self, "_fused_coefficients", (up, down, self.act.alpha, self.act.beta),
                                      lambda: fused_snake.kernel_coefficients(
                                          *_polyphase_up_taps(up.float()), down, *self.act.coefficients()))
        out = (_Workspace.get(3, rows.numel(), out_dtype, x.device).view(b, t, c) if scratch
               else torch.empty(b, t, c, dtype=out_dtype, device=x.device))
        out = fused_snake.anti_aliased_snakebeta_nwc_prepared(rows, coefficients, out=out)
        return out.view(b, 1, t, c).permute(0, 3, 1, 2)

    def _matrices(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-Toeplitz filter matrices, cached until a filter buffer changes (e.g. a state_dict load)."""
        up, down = self.upsample.filter, self.downsample.lowpass.filter
        return cached_derived(self, "_matrix_cache", (up, down), extra=(self.BLOCK, dtype, device),
                              build=lambda: (_block_toeplitz_up(up.to(dtype), self.BLOCK),
                                             _block_toeplitz_down(down.to(dtype), self.BLOCK)))

    def _forward_polyphase_scratch(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_forward_polyphase`'s arithmetic with every doubled-rate tensor in reused scratch memory.

        Inference only (in-place SnakeBeta). Fresh multi-megabyte tensors cost page faults whenever the
        allocator hands memory back to the OS, which on CPU can take as long as the arithmetic itself.
        """
        b, c, t = x.shape
        blk = self.BLOCK
        length = (-(-t // blk) + 1) * blk                # one spare block per channel
        up_m, down_m = self._matrices(x.dtype, x.device)
        ws = lambda slot, n: _Workspace.get(slot, n, x.dtype, x.device)  # noqa: E731
        xp = torch.cat([x[..., :1].expand(b, c, 3), x, x[..., -1:].expand(b, c, length - 3 - t)], dim=-1,
                       out=ws(0, b * c * length).view(b, c, length)).view(-1, blk)
        y = torch.mm(xp, up_m[:blk], out=ws(1, 2 * b * c * length).view(-1, 2 * blk))
        y[:-1].addmm_(xp[1:, :6], up_m[blk:])
        y = y.view(b, c, 2 * length)
        # replicate padding of the 2x signal (5 left, 6+ right), whole blocks
        right = y[..., 2 * t - 1:2 * t].expand(b, c, 2 * length - 5 - 2 * t)
        zp = torch.cat([y[..., :1].expand(b, c, 5), y[..., :2 * t], right], dim=-1,
                       out=ws(2, 2 * b * c * length).view(b, c, 2 * length))
        freq, inv_mag = self.act.coefficients()          # (C, 1) each
        act = torch.mul(zp, freq, out=y).sin_().square_().mul_(inv_mag).add_(zp).view(-1, 2 * blk)
        out = torch.mm(act, down_m[:2 * blk])
        out[:-1].addmm_(act[1:, :10], down_m[2 * blk:])
        return out.view(b, c, -1)[..., :t]

    def _forward_polyphase(self, x: torch.Tensor) -> torch.Tensor:
        """Same result as the reference path with dense small matmuls instead of depthwise (transposed) convs.

        The signal is cut into blocks of ``BLOCK`` samples; each block's 2*BLOCK interpolated samples are one
        (BLOCK+6)-sample window times a banded matrix, and each block of decimated samples one
        (2*BLOCK+10)-sample window of the padded 2x signal times another. GEMM runs these at full speed,
        whereas depthwise 12-tap convolutions hit slow kernels on CPU.
        """
        t = x.shape[-1]
        blk = self.BLOCK
        n_blocks = -(-t // blk)
        up_m, down_m = self._matrices(x.dtype, x.device)
        b, c = x.shape[0], x.shape[1]
        # Rows of ``blk`` samples (one spare block per channel) viewed without copying; each output block
        # is its own row times the head of the matrix plus the first 6 samples of the next row times the
        # tail (an in-place addmm on a strided view: no overlapping windows are materialised).
        xp = _replicate_pad(x, 3, (n_blocks + 1) * blk - 3 - t).view(-1, blk)
        y = torch.mm(xp, up_m[:blk])
        y[:-1].addmm_(xp[1:, :6], up_m[blk:])
        y = y.view(b, c, -1)[..., :2 * t]                                   # (B, C, 2T)
        # replicate padding of the 2x signal (5 left, 6 right), extended to whole blocks
        zp = self.act(_replicate_pad(y, 5, (n_blocks + 1) * 2 * blk - 5 - 2 * t)).view(-1, 2 * blk)
        out = torch.mm(zp, down_m[:2 * blk])
        out[:-1].addmm_(zp[1:, :10], down_m[2 * blk:])
        return out.view(b, c, -1)[..., :t]


def set_polyphase(model: nn.Module, enabled: bool = True) -> int:
    """Switch every supported :class:`Activation1d` in ``model`` to the polyphase path; returns the count."""
    count = 0
    for module in model.modules():
        if isinstance(module, Activation1d) and module.polyphase_supported:
            module.polyphase = enabled
            count += 1
    return count
