"""Fused anti-aliased SnakeBeta for channels-last CPU inference (a numba kernel).

:class:`modules.alias_free.Activation1d` with a SnakeBeta activation is, per channel:
2x Kaiser-sinc interpolation (12 taps) -> ``z + 1/beta * sin^2(alpha * z)`` -> 12-tap low-pass with
stride 2. Run as separate tensor operations it makes ~8 passes over a doubled-rate tensor that does not fit
in cache, and on CPU those passes cost more than the arithmetic. This kernel does the three steps for a
short block of time steps at once, so the doubled-rate samples live only in a small scratch block.

It works on channels-last memory, ``(B, T, C)``, the layout in which oneDNN runs the AMP blocks' dilated
convolutions at full speed (in ``(B, C, T)`` their speed varies by up to 4x with the buffers' addresses).
Every time step is then a contiguous row of C values, and the per-sample arithmetic vectorises across
channels.

``sin^2`` is evaluated with a Cody-Waite reduction modulo pi (sin^2 has period pi, so the sign of the
reduced sine never matters) and a degree-9 odd minimax polynomial; its error is a few float32 ulps, the
same order as the rounding differences between any two correct float32 implementations. The edge handling
(replicate padding of the input and of the doubled-rate signal) is that of the reference path, so outputs
match :meth:`Activation1d.forward` to float rounding (tested in tests/modules/test_fused_snake.py).
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import numpy as np
import torch

from utils.numba import available, cached_njit

# pi in two float32 parts: PI_A has 12 significant bits, so k * PI_A is exact for |k| < 2**12 multiples of
# pi, and PI_B is the float32 rest, applied with one fused multiply-add. What the two parts leave out of pi,
# k * 3e-11 at most, stays far below the rounding of alpha * z itself (its ulp is ~6e-8 * |alpha * z|), so a
# third part (the kernel had one) changed nothing but cost a multiply-add per value.
def _split_12_bits(value: float) -> float:
    exponent = math.frexp(value)[1]
    return math.floor(value * 2.0 ** (12 - exponent)) / 2.0 ** (12 - exponent)


_PI_A = np.float32(_split_12_bits(math.pi))
_PI_B = np.float32(math.pi - float(_PI_A))
_INV_PI = np.float32(1.0 / math.pi)
# minimax coefficients of sin(r) = r + r^3 * (S3 + S5 r^2 + S7 r^4 + S9 r^6) on [-pi/2, pi/2]
_S3 = np.float32(-0.166666597127914428710938)
_S5 = np.float32(0.00833307858556509017944336)
_S7 = np.float32(-0.0001981069071916863322258)
_S9 = np.float32(2.6083159809786593541503e-06)


# Reassociation is not allowed: it would undo the Cody-Waite reduction. Contraction to FMA is.
_FAST_MATH = {"contract", "nnan", "ninf", "nsz", "arcp"}

if available():
    # Module level, not closures of _kernel(): numba keys its on-disk cache on the pickled closure
    # variables, and a captured dispatcher pickles differently in every process (the cache never hit).
    @cached_njit(inline="always")
    def _empty_aligned(n):  # pragma: no cover - compiled
        # n float32 starting on a 64-byte boundary: every 16-lane load and store of the kernel then stays
        # within one cache line (numpy's 16-byte alignment made the kernel ~5-15 % slower, varying run to run)
        buf = np.empty(n + 16, dtype=np.float32)
        skip = (16 - (buf.ctypes.data % 64) // 4) % 16
        return buf[skip:skip + n]

    @cached_njit(fastmath=_FAST_MATH, inline="always")
    def _snake(z, freq, inv_mag):  # pragma: no cover - compiled
        v = freq * z
        k = np.floor(v * _INV_PI + np.float32(0.5))
        r = (v - k * _PI_A) - k * _PI_B
        r2 = r * r
        p = ((_S9 * r2 + _S7) * r2 + _S5) * r2 + _S3
        sin_r = r + r * r2 * p
        return z + inv_mag * (sin_r * sin_r)


# Long because it holds the kernel below; built on first use so that importing this module compiles nothing.
@functools.lru_cache(maxsize=None)
def _kernel():
    if not available():
        raise RuntimeError("fused SnakeBeta needs numba (pip install numba)")

    # One numba kernel is one compiled loop nest (upsample, snake, downsample per block): kept whole.
    @cached_njit(fastmath=_FAST_MATH)
    def kernel(x, x16, even, odd, down, freq, inv_mag, out, out16, block):  # pragma: no cover - compiled
        # Notation (per item, per channel): y[2t] = sum_j even[j] x[t+j-3], y[2t+1] = sum_j odd[j] x[t+j-3]
        # with x clamped at its ends; the doubled-rate signal is clamped too (y[s<0] = y[0],
        # y[s>2T-1] = y[2T-1]); out[t] = sum_k down[k] snake(y[2t+k-5]).  AE[t] = snake(y[2t]) and
        # AO[t] = snake(y[2t+1]) are computed for t in [t0-3, t1+3) per block of outputs [t0, t1), every
        # loop running over the flattened (time, channel) rows so that it vectorises for any C.
        # bfloat16 in or out: x16 / out16 (bit patterns as uint16, (B, T, C)) are used when not empty, and x / out
        # are then empty; the arithmetic is float32 either way (widened on the copy in, rounded on the way out).
        in16, out_is16 = x16.size > 0, out16.size > 0
        n_batch, length, channels = x16.shape if in16 else x.shape
        rows = block + 6
        xp = _empty_aligned((block + 12) * channels)
        xp_bits = xp.view(np.uint32)
        ob_scratch = _empty_aligned(block * channels if out_is16 else 0)
        ob_bits = ob_scratch.view(np.uint32)
        ae = _empty_aligned(rows * channels)
        ao = _empty_aligned(rows * channels)
        fr = _empty_aligned(rows * channels)
        im = _empty_aligned(rows * channels)
        for q in range(rows):  # per-channel coefficients tiled over a block's rows
            for m in range(channels):
                fr[q * channels + m] = freq[m]
                im[q * channels + m] = inv_mag[m]
        e0, e1, e2, e3, e4, e5 = even[0], even[1], even[2], even[3], even[4], even[5]
        o1, o2, o3, o4, o5, o6 = odd[1], odd[2], odd[3], odd[4], odd[5], odd[6]
        d0, d1, d2, d3, d4, d5 = down[0], down[1], down[2], down[3], down[4], down[5]
        d6, d7, d8, d9, d10, d11 = down[6], down[7], down[8], down[9], down[10], down[11]
        # Every released filter is mirror-symmetric: odd[j] = even[6-j] and down[k] = down[11-k]. Then
        # even and odd phases are the half-sum and half-difference of a palindromic and an antipalindromic
        # sum over mirrored input pairs, and the down filter adds mirrored pairs first: 7 + 6 multiplies
        # instead of 12 + 12. Multiplies are what bounds this kernel (the CPU has fewer multiply than add
        # units), so the kernel runs 6-10 % faster; other filters take the general loops.
        mirror = (o1 == e5 and o2 == e4 and o3 == e3 and o4 == e2 and o5 == e1 and o6 == e0
                  and d0 == d11 and d1 == d10 and d2 == d9 and d3 == d8 and d4 == d7 and d5 == d6)
        half = np.float32(0.5)
        p0, p1, p2, p3 = half * e0, half * (e1 + e5), half * (e2 + e4), e3  # p3: x3 pairs with itself
        q0, q1, q2 = half * e0, half * (e1 - e5), half * (e2 - e4)
        c = channels
        for b in range(n_batch):
            xb = x[b].reshape(length * channels) if not in16 else xp[0:0]
            xb16 = x16[b].reshape(length * channels) if in16 else x16.reshape(-1)[0:0]
            for t0 in range(0, length, block):
                t1 = min(t0 + block, length)
                n_out = t1 - t0
                n_rows = n_out + 6
                # input rows t0-6 .. t1+5, replicate-clamped. A float32 block inside the signal is read where it
                # lies; otherwise the rows inside the signal are copied (one loop over them all: a copy per row
                # cost more than the arithmetic for small C) and the clamped ones at the ends row by row.
                lo, hi = t0 - 6, t1 + 6
                a, z = max(lo, 0), min(hi, length)
                if not in16 and a == lo and z == hi:
                    xs = xb[lo * c:hi * c]
                else:
                    # explicit loops, not slice assignment: numba's slice copy ran at a third of the speed and
                    # cost ~20 % of the kernel's time
                    dst_bits, dst = xp_bits[(a - lo) * c:(z - lo) * c], xp[(a - lo) * c:(z - lo) * c]
                    if in16:  # bfloat16 -> float32 is the 16 bits shifted into the high half
                        src16 = xb16[a * c:z * c]
                        for m in range(dst_bits.size):
                            dst_bits[m] = np.uint32(src16[m]) << np.uint32(16)
                    else:
                        src = xb[a * c:z * c]
                        for m in range(dst.size):
                            dst[m] = src[m]
                    for p in range(a - lo):
                        edge, row = xp[(a - lo) * c:(a - lo + 1) * c], xp[p * c:(p + 1) * c]
                        for m in range(c):
                            row[m] = edge[m]
                    for p in range(z - lo, hi - lo):
                        edge, row = xp[(z - lo - 1) * c:(z - lo) * c], xp[p * c:(p + 1) * c]
                        for m in range(c):
                            row[m] = edge[m]
                    xs = xp
                n = n_rows * c
                # shifted views: the loops below index every array with the bare loop counter, which lets
                # LLVM drop numba's negative-index handling and vectorise
                x0, x1, x2, x3 = xs[0:n], xs[c:c + n], xs[2 * c:2 * c + n], xs[3 * c:3 * c + n]
                x4, x5, x6 = xs[4 * c:4 * c + n], xs[5 * c:5 * c + n], xs[6 * c:6 * c + n]
                if mirror:
                    for m in range(n):
                        pal = p0 * (x0[m] + x6[m]) + p1 * (x1[m] + x5[m]) + p2 * (x2[m] + x4[m]) + p3 * x3[m]
                        anti = q0 * (x0[m] - x6[m]) + q1 * (x1[m] - x5[m]) + q2 * (x2[m] - x4[m])
                        ae[m] = _snake(pal + anti, fr[m], im[m])
                        ao[m] = _snake(pal - anti, fr[m], im[m])
                else:
                    for m in range(n):
                        ze = e0 * x0[m] + e1 * x1[m] + e2 * x2[m] + e3 * x3[m] + e4 * x4[m] + e5 * x5[m]
                        zo = o1 * x1[m] + o2 * x2[m] + o3 * x3[m] + o4 * x4[m] + o5 * x5[m] + o6 * x6[m]
                        ae[m] = _snake(ze, fr[m], im[m])
                        ao[m] = _snake(zo, fr[m], im[m])
                # the clamped doubled-rate signal: rows before t=0 repeat snake(y[0]) = AE[0], rows from
                # t=T on repeat snake(y[2T-1]) = AO[T-1]
                q_first = 3 - t0  # row of t = 0
                for q in range(min(q_first, n_rows)):
                    ae[q * c:(q + 1) * c] = ae[q_first * c:(q_first + 1) * c]
                    ao[q * c:(q + 1) * c] = ae[q_first * c:(q_first + 1) * c]
                q_last = length - 1 - t0 + 3  # row of t = T-1
                for q in range(max(q_last + 1, 0), n_rows):
                    ae[q * c:(q + 1) * c] = ao[q_last * c:(q_last + 1) * c]
                    ao[q * c:(q + 1) * c] = ao[q_last * c:(q_last + 1) * c]
                n = n_out * c
                ob = ob_scratch[0:n] if out_is16 else out[b].reshape(length * channels)[t0 * c:t1 * c]
                a0, a1, a2, a3 = ao[0:n], ae[c:c + n], ao[c:c + n], ae[2 * c:2 * c + n]
                a4, a5, a6, a7 = ao[2 * c:2 * c + n], ae[3 * c:3 * c + n], ao[3 * c:3 * c + n], ae[4 * c:4 * c + n]
                a8, a9, a10, a11 = ao[4 * c:4 * c + n], ae[5 * c:5 * c + n], ao[5 * c:5 * c + n], ae[6 * c:6 * c + n]
                if mirror:
                    for m in range(n):
                        ob[m] = (d0 * (a0[m] + a11[m]) + d1 * (a1[m] + a10[m]) + d2 * (a2[m] + a9[m])
                                 + d3 * (a3[m] + a8[m]) + d4 * (a4[m] + a7[m]) + d5 * (a5[m] + a6[m]))
                else:
                    for m in range(n):
                        ob[m] = (d0 * a0[m] + d1 * a1[m] + d2 * a2[m] + d3 * a3[m] + d4 * a4[m] + d5 * a5[m]
                                 + d6 * a6[m] + d7 * a7[m] + d8 * a8[m] + d9 * a9[m] + d10 * a10[m] + d11 * a11[m])
                if out_is16:  # float32 -> bfloat16, rounded to nearest even (what torch's cast does)
                    o16 = out16[b].reshape(length * channels)[t0 * c:t1 * c]
                    for m in range(n):
                        bits = ob_bits[m]
                        o16[m] = np.uint16((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
                                           >> np.uint32(16))

    return kernel


def block_for(channels: int) -> int:
    """Output time steps per block: at most 512, and at most 32768 values per scratch array (128 KB)."""
    return max(8, min(512, 32768 // max(channels, 1)))


KernelCoefficients = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def kernel_coefficients(even: torch.Tensor, odd: torch.Tensor, down: torch.Tensor, freq: torch.Tensor,
                        inv_mag: torch.Tensor) -> KernelCoefficients:
    """The kernel's coefficient arguments (see :func:`anti_aliased_snakebeta_nwc`) as flat float32 arrays.

    Build them once per set of weights and pass them to :func:`anti_aliased_snakebeta_nwc_prepared`: converting
    five tensors on every call cost ~10 us, as much as the arithmetic of a small call.
    """
    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().to(torch.float32).contiguous().reshape(-1).numpy()

    return arr(even), arr(odd), arr(down), arr(freq), arr(inv_mag)


def anti_aliased_snakebeta_nwc(x: torch.Tensor, even: torch.Tensor, odd: torch.Tensor, down: torch.Tensor,
                               freq: torch.Tensor, inv_mag: torch.Tensor,
                               out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Channels-last anti-aliased SnakeBeta on CPU (float32 arithmetic).

    Args:
        x: (B, T, C) contiguous float32 or bfloat16 CPU tensor.
        even, odd: (7,) polyphase taps of the 2x interpolator (see ``alias_free._polyphase_up_taps``);
            ``even[6]`` and ``odd[0]`` are zero.
        down: (12,) decimating low-pass taps.
        freq, inv_mag: (C,) SnakeBeta frequency ``alpha`` and ``1 / (beta + eps)``.
        out: optional (B, T, C) float32 or bfloat16 output tensor (default: float32); a bfloat16 output is
            the float32 result rounded to nearest even, as ``.to(torch.bfloat16)`` would give it.
    Returns:
        (B, T, C) ``out``.
    """
    return anti_aliased_snakebeta_nwc_prepared(x, kernel_coefficients(even, odd, down, freq, inv_mag), out)


def anti_aliased_snakebeta_nwc_prepared(x: torch.Tensor, coefficients: KernelCoefficients,
                                        out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`anti_aliased_snakebeta_nwc` with coefficients from :func:`kernel_coefficients`."""
    kinds = (torch.float32, torch.bfloat16)
    if x.dtype not in kinds or x.device.type != "cpu" or x.dim() != 3 or not x.is_contiguous():
        raise ValueError(f"anti_aliased_snakebeta_nwc: need a contiguous (B, T, C) float32 or bfloat16 CPU tensor, "
                         f"got {x.dtype} {x.device.type} shape {tuple(x.shape)}")
    if out is None:
        out = torch.empty_like(x, dtype=torch.float32)
    if out.dtype not in kinds or out.shape != x.shape or not out.is_contiguous():
        raise ValueError(f"anti_aliased_snakebeta_nwc: out must be a contiguous float32 or bfloat16 tensor of shape "
                         f"{tuple(x.shape)}, got {out.dtype} {tuple(out.shape)}")
    channels = x.shape[-1]
    even, odd, down, freq, inv_mag = coefficients
    if freq.size != channels or inv_mag.size != channels:
        raise ValueError(f"anti_aliased_snakebeta_nwc: {channels} channels but {freq.size} frequencies and "
                         f"{inv_mag.size} magnitudes")

    def split(t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:  # (float32 array, bfloat16 bits); one is empty
        if t.dtype == torch.bfloat16:
            return _EMPTY_F32, t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy(), _EMPTY_U16

    if x.numel():
        (x32, x16), (o32, o16) = split(x), split(out)
        _kernel()(x32, x16, even, odd, down, freq, inv_mag, o32, o16, block_for(channels))
    return out


_EMPTY_F32 = np.zeros((0, 0, 0), dtype=np.float32)
_EMPTY_U16 = np.zeros((0, 0, 0), dtype=np.uint16)
