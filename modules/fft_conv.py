"""Overlap-save FFT convolution for long 1-D convolutions on time-major (T, C) signals.

On CPUs without AVX-512 a direct float32 convolution runs at the core's FMA ceiling (~30-37 GFLOP/s on one Zen 1
core), so the only way to make the vocoders' wide-kernel convolutions faster there is fewer multiplies. In the
frequency domain an 11-tap convolution over ``C`` channels costs about ``4 C^2`` real multiplies per output sample
(one complex ``C x C`` product per bin, ~N/2 bins per ~N - L outputs) instead of ``11 C^2``. The transforms cost
``O(C log N)`` per sample, which is why it pays only from ~64 channels up (measured, see :func:`fft_block_for`).

Numbers: the result equals the direct convolution to float32 rounding of the transforms (max |diff| ~1e-5 on
unit-scale signals, against ~1e-6 between two direct kernels), well inside the 1e-4 waveform tolerance of the
parity fixtures. The kernel's spectrum is built per call by a small real matrix product (its ``K`` non-zero taps
against a cosine/sine table), so no spectrum copies of the weights are kept (they would be ~6-12x their size).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Optional

import torch
import torch.nn.functional as F

from utils.devices import cpu_has_avx512

MIN_FFT_CHANNELS = 64
FFT_CONVOLUTION_MODES = ("auto", "on", "off")


class FFTConvolutionSettingError(ValueError):
    """An unknown ``fft`` mode or ``ECHELON_FFT_CONVOLUTIONS`` value (the CLIs print it as one line)."""


def fft_convolutions_wanted(mode: str = "auto") -> bool:
    """Whether the AMP blocks (``modules.vocoders.amp``) use FFT convolutions where they pay: ``"on"``,
    ``"off"``, or ``"auto"``, which takes ``ECHELON_FFT_CONVOLUTIONS`` (``on``/``off``/``auto``) when set, else
    on for CPUs without AVX-512.

    Without AVX-512 oneDNN's direct float32 convolutions already run at the core's FMA ceiling, and the
    frequency domain needs 2-3x fewer multiplies for the vocoders' 7- and 11-tap ones; with AVX-512 the direct
    kernels are ~5x faster and the transforms do not pay (measured in models/tts/hierspeechpp/README.md)."""
    what = "fft convolutions"
    if mode == "auto" and "ECHELON_FFT_CONVOLUTIONS" in os.environ:
        what, mode = "ECHELON_FFT_CONVOLUTIONS", os.environ["ECHELON_FFT_CONVOLUTIONS"].strip().lower() or "auto"
    if mode not in FFT_CONVOLUTION_MODES:
        raise FFTConvolutionSettingError(f"{what}={mode!r}: choose one of {', '.join(FFT_CONVOLUTION_MODES)}")
    return mode == "on" or (mode == "auto" and not cpu_has_avx512())


def fft_block_for(in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                  length: int) -> Optional[int]:
    """The FFT block length for a stride-1 ``kernel_size``/``dilation`` convolution over ``length`` samples where
    the overlap-save form is faster than oneDNN's direct one on an AVX2 core, else None.

    Measured on one Zen 1 core (AMD EPYC family 23), time-major input, spectrum built per call (direct -> FFT):
    128 channels over 4,300 samples, 11 taps: 51 -> 22 ms (dilation 1, 64-sample blocks), 42 -> 27 ms
    (3, 128), 42 -> 31 ms (5, 128); 7 taps, dilation 1: 33 -> 20 ms (64). 256 channels over 2,500 samples (64):
    11 taps 118 -> 51 ms (1), 127 -> 69 ms (3), 7 taps 77 -> 46 ms (1); over 1,000 samples only 32-sample
    blocks pay (11 taps 48 -> 26 ms, 7 taps 25 -> 22 ms), since the spectrum costs ``C_in * C_out`` per bin
    whatever the length. 64 channels: 11 taps 13.1 -> 8.5 ms (1), 11.1 -> 10.4 ms (3). 3-tap kernels, 7 taps
    dilated by 3+, and anything below 64 channels tie or lose.
    """
    channels = max(in_channels, out_channels)
    if min(in_channels, out_channels) < MIN_FFT_CHANNELS:
        return None
    if not (kernel_size >= 11 or (kernel_size >= 7 and dilation == 1)):
        return None
    span = (kernel_size - 1) * dilation + 1
    if channels >= 256:
        if length < 2048:  # measured from 1,000 samples (7 taps: 25 -> 22 ms, the margin is thin below)
            return 32 if span <= 16 and length >= 1000 else None
        return 64 if span <= 32 else None
    if span <= 16:
        block = 64
    elif span <= 32 or (span <= 64 and channels >= 128):
        block = 128
    else:
        return None
    return block if length >= 16 * block * channels // MIN_FFT_CHANNELS else None


@functools.lru_cache(maxsize=64)
def _tap_phases(kernel_size: int, dilation: int, block: int) -> torch.Tensor:
    """(2, K, F) cos/-sin table: the spectrum of a filter whose tap ``k`` sits at ``(K - 1 - k) * dilation``."""
    bins = block // 2 + 1
    positions = (kernel_size - 1 - torch.arange(kernel_size, dtype=torch.float64)) * dilation
    angle = 2 * math.pi * positions[:, None] * torch.arange(bins, dtype=torch.float64)[None, :] / block
    return torch.stack([torch.cos(angle), -torch.sin(angle)]).to(torch.float32)


def kernel_spectrum(weight: torch.Tensor, dilation: int, block: int) -> torch.Tensor:
    """weight (C_out, C_in, K) of a cross-correlation -> (F, C_in, C_out) complex spectrum of its flipped,
    dilated taps in a ``block``-sample circular convolution (F = block // 2 + 1)."""
    c_out, c_in, k = weight.shape
    taps = weight.detach().permute(2, 1, 0).reshape(k, c_in * c_out)
    phases = _tap_phases(k, dilation, block)  # (2, K, F)
    real = phases[0].t() @ taps  # (F, C_in * C_out)
    imag = phases[1].t() @ taps
    return torch.complex(real, imag).view(-1, c_in, c_out)


def fft_conv_time_major(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], dilation: int,
                        padding: int, block: int) -> torch.Tensor:
    """``conv1d`` (stride 1, zero padding ``padding`` on both sides) of a time-major signal by overlap-save.

    Args:
        x: (T, C_in) float32, time-major.
        weight: (C_out, C_in, K); bias: (C_out,) or None.
        block: FFT length; must be at least twice the span ``(K - 1) * dilation + 1``.
    Returns:
        (T + 2 * padding - span + 1, C_out), time-major and contiguous.
    """
    length, c_in = x.shape
    c_out, _, k = weight.shape
    span = (k - 1) * dilation + 1
    if block < 2 * span:
        raise ValueError(f"fft_conv_time_major: block {block} is shorter than twice the kernel span {span}")
    out_len = length + 2 * padding - span + 1
    step = block - span + 1
    n_blocks = -(-out_len // step)
    padded = x.new_zeros(n_blocks * step + span - 1, c_in)
    padded[padding:padding + length] = x
    # (n_blocks, C_in, block) windows, transformed along time; the product wants bins first
    spectra = torch.fft.rfft(padded.unfold(0, block, step), dim=-1).permute(2, 0, 1)
    mixed = torch.matmul(spectra, kernel_spectrum(weight, dilation, block))  # (F, n_blocks, C_out)
    y = torch.fft.irfft(mixed, n=block, dim=0)[span - 1:]  # (step, n_blocks, C_out): the valid outputs
    # a copy for several blocks; for one block a view of the fresh transform output, whose strides may not be
    # row-major: contiguous() is then the copy
    out = y.transpose(0, 1).reshape(n_blocks * step, c_out)[:out_len].contiguous()
    if bias is not None:
        out.add_(bias)
    return out
