"""Float32 linear layers through oneDNN's matmul for CPU inference.

torch computes a float32 ``F.linear`` on CPU with MKL's sgemm. MKL picks its kernels by CPU vendor: on the AMD
EPYC (Zen 5, AVX-512) machines Echelon is benchmarked on it runs about 80 GFLOP/s on one core for the
wav2vec2 / DiT shapes, while oneDNN (the library torch's CPU convolutions already use) JIT-compiles AVX-512
kernels for whatever CPU it finds and reaches about 190 GFLOP/s on the same products. Same products, another
summation order: results agree to float32 rounding (relative ~1e-6), which the parity tolerances absorb.

:func:`linear` takes the oneDNN path for CPU float32 calls without autograd and falls back to ``F.linear``
otherwise (grad, other dtypes or devices, tracing for ONNX export, torch built without oneDNN). :func:`use_onednn_linear` switches the
plain ``nn.Linear`` layers of a model to it in place (same parameters, same state-dict keys), and its plain
``nn.Conv1d`` layers to :class:`OneDNNConv1d`: torch sends a batch-1 convolution with a 1-wide kernel (or a
small input) to its own im2col + MKL path instead of oneDNN, at the same ~80 GFLOP/s (WaveNet and flow
projections: a 512 -> 1024 1x1 conv on 339 frames takes 4.3 ms there, 1.9 ms in oneDNN).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["OneDNNConv1d", "OneDNNLinear", "linear", "onednn_available", "use_onednn_linear"]

_OP = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's fused linear operator."""
    return _OP is not None and torch.backends.mkldnn.is_available()


_AVAILABLE = onednn_available()


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, gelu_tanh: bool = False) -> Tensor:
    """``F.linear(x, weight, bias)``: ``x (..., in)``, ``weight (out, in)`` -> ``(..., out)``; oneDNN when it
    applies (CPU, float32, no autograd), else torch's own. ``gelu_tanh`` applies
    ``F.gelu(., approximate="tanh")`` to the result, inside oneDNN's kernel when it runs there (a pass over the
    output fewer: 2.64 -> 2.38 ms for a 339 x 960 -> 768 product; same values to ~5e-7)."""
    if (_AVAILABLE and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_grad_enabled() and x.numel() > 0 and not torch.jit.is_tracing()):
        return _OP(x, weight, bias, "gelu", [], "tanh") if gelu_tanh else _OP(x, weight, bias, "none", [], "")
    out = F.linear(x, weight, bias)
    return F.gelu(out, approximate="tanh") if gelu_tanh else out


class OneDNNLinear(nn.Linear):
    """An ``nn.Linear`` whose inference calls go through :func:`linear` (made by :func:`use_onednn_linear`)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


class OneDNNConv1d(nn.Conv1d):
    """An ``nn.Conv1d`` whose CPU float32 inference calls always run oneDNN's convolution (made by
    :func:`use_onednn_linear`); anything else (autograd, other devices or dtypes, tracing, non-zero padding
    modes or string paddings) runs ``nn.Conv1d.forward``."""

    def forward(self, x: Tensor) -> Tensor:
        if (_AVAILABLE and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
                and x.dim() == 3 and x.numel() > 0 and self.padding_mode == "zeros"
                and not isinstance(self.padding, str) and not torch.jit.is_tracing()):
            out = torch.mkldnn_convolution(x.unsqueeze(2), self.weight.unsqueeze(2), self.bias,
                                           (0, self.padding[0]), (1, self.stride[0]), (1, self.dilation[0]),
                                           self.groups)
            return out.squeeze(2)
        return super().forward(x)


def use_onednn_linear(model: nn.Module, enabled: bool = True) -> int:
    """Switch every plain ``nn.Linear`` of ``model`` to :class:`OneDNNLinear` and every plain ``nn.Conv1d`` to
    :class:`OneDNNConv1d` (or back with ``enabled=False``), in place; returns how many layers were switched.
    Subclasses are left alone."""
    pairs = [(nn.Linear, OneDNNLinear), (nn.Conv1d, OneDNNConv1d)]
    switch = {source: target for source, target in (pairs if enabled else [(b, a) for a, b in pairs])}
    count = 0
    for module in model.modules():
        target = switch.get(type(module))
        if target is not None:
            module.__class__ = target
            count += 1
    return count


def conv_weight_matrix(weight: Tensor) -> Tensor:
    """A conv kernel ``(C_out, C_in, k)`` as the ``(C_out, k * C_in)`` matrix of :func:`time_major_conv1d`
    (column ``j * C_in + i`` holds tap j of input channel i)."""
    return weight.permute(0, 2, 1).reshape(weight.size(0), -1)


def time_major_conv1d(x: Tensor, matrix: Tensor, bias: Optional[Tensor], kernel_size: int, stride: int = 1,
                      gelu_tanh: bool = False) -> Tensor:
    """An undilated, unpadded conv on time-major input as one GEMM over overlapping windows.

    ``x (B, T, C_in)`` (pad it first for "same" output), ``matrix`` from :func:`conv_weight_matrix` ->
    ``(B, T', C_out)``, ``T' = (T - kernel_size) // stride + 1``. In (T, C) memory the window of output frame t
    is the contiguous run of ``kernel_size * C_in`` values at ``stride * t * C_in``, so the windows are a
    strided view (no copy) multiplied by the kernel matrix through :func:`linear` (``gelu_tanh`` as there).
    """
    x = x.contiguous()
    batch, length, channels = x.shape
    frames = (length - kernel_size) // stride + 1
    if frames <= 0:
        raise ValueError(f"input of {length} frames is shorter than the conv kernel ({kernel_size})")
    windows = [item.as_strided((frames, kernel_size * channels), (stride * channels, 1)) for item in x]
    if batch == 1:
        return linear(windows[0], matrix, bias, gelu_tanh).unsqueeze(0)
    return torch.stack([linear(w, matrix, bias, gelu_tanh) for w in windows])


def stride2_taps3_matrices(weight: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """A 3-tap kernel ``(C_out, C_in, 3)`` as the three matrices of :func:`stride2_taps3_conv`:
    ``[W0 W1]``, ``W0 + W2`` and ``[W2 W1]`` (``(C_out, 2 C_in)``, ``(C_out, C_in)``, ``(C_out, 2 C_in)``)."""
    w0, w1, w2 = weight[:, :, 0], weight[:, :, 1], weight[:, :, 2]
    return torch.cat([w0, w1], 1).contiguous(), (w0 + w2).contiguous(), torch.cat([w2, w1], 1).contiguous()


def stride2_taps3_conv(x: Tensor, matrices: Tuple[Tensor, Tensor, Tensor], bias: Optional[Tensor]) -> Tensor:
    """:func:`time_major_conv1d` for an unpadded 3-tap, stride-2 conv with 2.5 instead of 3 products of
    C_in x C_out per output frame: ``x (B, T, C_in)`` -> ``(B, T', C_out)``, T' = (T - 3) // 2 + 1, each item
    by :func:`_stride2_taps3_item`; ``matrices`` from :func:`stride2_taps3_matrices`."""
    x = x.contiguous()
    if x.size(0) == 1:
        return _stride2_taps3_item(x[0], matrices, bias).unsqueeze(0)
    return torch.stack([_stride2_taps3_item(item, matrices, bias) for item in x])


def _stride2_taps3_item(x: Tensor, matrices: Tuple[Tensor, Tensor, Tensor], bias: Optional[Tensor]) -> Tensor:
    """One item, ``x (T, C_in)`` -> ``(T', C_out)``.

    Output frame t reads x[2t], x[2t+1], x[2t+2]: the even-phase samples through a 2-tap filter (W0, W2) and
    the odd ones through W1. Two outputs of the 2-tap filter cost three products (Winograd F(2, 2)):
    ``y[2s] = W0 (x[4s] - x[4s+2]) + (W0 + W2) x[4s+2] + W1 x[4s+1]`` and
    ``y[2s+1] = W2 (x[4s+4] - x[4s+2]) + (W0 + W2) x[4s+2] + W1 x[4s+3]``. The differences are exact-enough
    float32 subtractions of neighbouring samples, so the result matches the direct conv to ~1e-6 relative.
    Measured on one Zen 1 core for wav2vec2's 512-channel front-end layers, per 1 s piece: 143 -> 124 ms.
    """
    length, channels = x.shape
    frames = (length - 3) // 2 + 1
    if frames <= 0:
        raise ValueError(f"input of {length} frames is shorter than the conv kernel (3)")
    pairs = frames // 2
    even_pair, middle, odd_pair = matrices
    out = x.new_empty(frames, middle.size(0))
    if pairs:
        first = x.new_empty(pairs, 2 * channels)  # [x[4s] - x[4s+2], x[4s+1]]
        second = x.new_empty(pairs, 2 * channels)  # [x[4s+4] - x[4s+2], x[4s+3]]
        centre = x[2:4 * pairs + 2:4]
        torch.sub(x[0:4 * pairs:4], centre, out=first[:, :channels])
        first[:, channels:] = x[1:4 * pairs:4]
        torch.sub(x[4:4 * pairs + 4:4], centre, out=second[:, :channels])
        second[:, channels:] = x[3:4 * pairs + 3:4]
        shared = linear(centre, middle)
        pairs_out = out[:2 * pairs].view(pairs, 2, middle.size(0))
        torch.add(linear(first, even_pair, bias), shared, out=pairs_out[:, 0])
        torch.add(linear(second, odd_pair, bias), shared, out=pairs_out[:, 1])
    if frames % 2:  # the last frame directly: x[2t] W0 + x[2t+1] W1 + x[2t+2] W2
        t = frames - 1
        last = torch.cat([x[2 * t] - x[2 * t + 2], x[2 * t + 1]])[None]
        out[t] = linear(last, even_pair, bias)[0] + linear(x[2 * t + 2][None], middle)[0]
    return out


def time_major_kernel(conv: nn.Conv1d) -> Tensor:
    """``conv``'s kernel as the :func:`time_major_conv1d` matrix ``(C_out, k * C_in)``, without a copy.

    The parameter is re-laid out in place once (same values and shape, memory ordered ``(C_out, k, C_in)``),
    after which the matrix is a view: no second copy of the weights is kept. That memory order is also what
    oneDNN's channels-last convolutions read, so ``conv`` itself keeps working (inference only).
    """
    weight = conv.weight
    if not weight.detach().permute(0, 2, 1).is_contiguous():
        with torch.no_grad():
            weight.data = weight.detach().permute(0, 2, 1).contiguous().permute(0, 2, 1)
    return weight.detach().permute(0, 2, 1).reshape(weight.size(0), -1)
