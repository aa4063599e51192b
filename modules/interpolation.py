"""Windows of ``F.interpolate(x, size=n_out, mode="linear")`` (align_corners=False), computed on their own.

A streaming or chunked consumer (SpeechSR's chunked inference) needs output samples ``[lo, hi)`` of the
interpolation without materialising the whole up-sampled signal (32 channels x 3 x N floats: ~370 MB for a
minute of 16 kHz audio going to 48 kHz). Each output sample ``j`` reads two input samples with weights from its
source position ``src = scale * (j + 0.5) - 0.5`` (``scale = n_in / n_out``), which PyTorch computes in
float32; the weights must come out exactly as PyTorch's, because at large ``j`` a float32 position is only
accurate to ~1e-3 samples and a differently rounded one moves the output by up to ~1e-3 (what the released
SpeechSR weights were trained with). PyTorch builds for AVX2/AVX-512 compute that position with one fused
multiply-add, a build without FMA rounds twice: :func:`torch_fuses_positions` asks the running torch once
(its output on a probe where the two differ), and the window is then PyTorch's own arithmetic up to the
last float32 rounding of the blend (~1e-7).
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from utils.numba import available, cached_njit

__all__ = ["input_span", "interpolate_window", "linear_taps", "torch_fuses_positions"]


def linear_taps(n_in: int, n_out: int, lo: int, hi: int, fused: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                              np.ndarray]:
    """Input indices ``i0, i1`` (int64) and weights ``w0, w1`` (float32) of output samples ``[lo, hi)``.

    ``fused``: the position ``scale * (j + 0.5) - 0.5`` rounded once (FMA), else the product rounded first.
    """
    scale = np.float32(np.float32(n_in) / np.float32(n_out))
    half = np.arange(lo, hi, dtype=np.int64).astype(np.float32) + np.float32(0.5)
    if fused:  # the float64 product of two float32 values is exact, and so is subtracting 0.5 from it here
        src = (np.float64(scale) * half.astype(np.float64) - 0.5).astype(np.float32)
    else:
        src = (scale * half).astype(np.float32) - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = src.astype(np.int64)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, w0, w1


if available():
    @cached_njit(fastmath={"contract"})
    def _blend(x, i0, i1, w0, w1, out):  # pragma: no cover - compiled
        # (R, L) rows, gathered along time: out[r, j] = x[r, i0[j]] * w0[j] + x[r, i1[j]] * w1[j]
        for r in range(x.shape[0]):
            row, dst = x[r], out[r]
            for j in range(i0.size):
                dst[j] = row[i0[j]] * w0[j] + row[i1[j]] * w1[j]


def _window_from_taps(x: torch.Tensor, taps, offset: int = 0) -> torch.Tensor:
    i0, i1, w0, w1 = taps
    i0, i1 = i0 - offset, i1 - offset
    if available() and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled():
        # one pass (index_select along time gathers at ~1.7 ns a value; this loop at a fraction of that)
        rows = x.reshape(-1, x.size(-1)).contiguous()
        out = x.new_empty(rows.size(0), i0.size)
        _blend(rows.numpy(), i0, i1, w0, w1, out.numpy())
        return out.reshape(*x.shape[:-1], i0.size)
    first, second = torch.from_numpy(i0).to(x.device), torch.from_numpy(i1).to(x.device)
    return (x.index_select(-1, first) * torch.from_numpy(w0).to(x.device, x.dtype)
            + x.index_select(-1, second) * torch.from_numpy(w1).to(x.device, x.dtype))


@functools.lru_cache(maxsize=None)
def torch_fuses_positions() -> Optional[bool]:
    """Whether this torch computes linear-interpolation positions with one rounding (True) or two (False);
    None when neither reproduces it (callers then interpolate with ``F.interpolate`` itself)."""
    n_in, n_out = 16000, 48000  # the two roundings give different positions for a few of these samples
    probe = torch.randn(1, 1, n_in, generator=torch.Generator().manual_seed(0))
    reference = F.interpolate(probe, size=n_out, mode="linear")
    for fused in (True, False):
        window = _window_from_taps(probe, linear_taps(n_in, n_out, 0, n_out, fused))
        if float((window - reference).abs().max()) <= 1e-6:
            return fused
    return None


def interpolate_window(x: torch.Tensor, n_out: int, lo: int, hi: int, offset: int = 0,
                       n_in: Optional[int] = None) -> torch.Tensor:
    """Samples ``[lo, hi)`` of ``F.interpolate(signal, size=n_out, mode="linear")``.

    Args:
        x: ``(B, C, L)``, the part of the input signal that starts at input sample ``offset`` and holds every
            sample the window reads (see :func:`input_span`).
        n_out: length of the whole interpolated signal; n_in: length of the whole input (default: ``L``,
            i.e. ``x`` is the whole signal).
    Returns ``(B, C, hi - lo)``.
    """
    fused = torch_fuses_positions()
    if fused is None:
        raise RuntimeError("interpolate_window: this torch's linear interpolation could not be reproduced")
    return _window_from_taps(x, linear_taps(x.size(-1) if n_in is None else n_in, n_out, lo, hi, fused), offset)


def input_span(n_in: int, n_out: int, lo: int, hi: int) -> Tuple[int, int]:
    """Input samples ``[a, b)`` that output samples ``[lo, hi)`` read (under either rounding)."""
    first = min(int(linear_taps(n_in, n_out, lo, lo + 1, fused)[0][0]) for fused in (True, False))
    last = max(int(linear_taps(n_in, n_out, hi - 1, hi, fused)[1][0]) for fused in (True, False))
    return first, last + 1
