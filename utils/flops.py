"""Floating-point operations of a call, counted at torch's dispatcher, and the GEMM rate of this CPU.

A speed-up between two implementations of the same model mixes two things: how much arithmetic each one does
and how fast each one runs it. Which of the two dominates depends on the CPU. On a core where both run their
matrix products at the same FMA ceiling, only the arithmetic that was removed counts. This happens on an AVX2
core, and on a Zen 4 core, whose AVX-512 runs on 256-bit units. Counting the FLOPs separates the two, and
:func:`speed_up_bound` turns the count into the largest speed-up that this CPU allows.

Counted: matrix products (``mm``, ``addmm``, ``bmm``, oneDNN's fused linear), convolutions and attention. A
complex product counts as four real multiply-adds. Not counted: element-wise work, FFTs and numba kernels
(YAAPT, the fused SnakeBeta). So the count is a floor on the arithmetic, and a bound built on it is an upper
bound.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "gemm_gflops_per_second", "speed_up_bound"]


def _complex_factor(*tensors: torch.Tensor) -> int:
    return 4 if any(t.is_complex() for t in tensors) else 1


def _mm_flops(a: torch.Tensor, b: torch.Tensor, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """(M, K) @ (K, N): 2 M N K real operations; x4 when complex."""
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] * _complex_factor(a, b)


def _addmm_flops(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: Any, out_val: Any = None,
                 **kwargs: Any) -> int:
    return _mm_flops(a, b)


def _bmm_flops(a: torch.Tensor, b: torch.Tensor, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """(B, M, K) @ (B, K, N)."""
    return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2] * _complex_factor(a, b)


def _onednn_linear_flops(x: torch.Tensor, weight: torch.Tensor, *args: Any, out_val: Any = None,
                         **kwargs: Any) -> int:
    """``mkldnn._linear_pointwise``: x (..., in) by weight (out, in) (``modules.onednn_linear``)."""
    return 2 * math.prod(x.shape[:-1]) * weight.shape[0] * weight.shape[1]


def _cpu_attention_flops(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                         out_val: Any = None, **kwargs: Any) -> int:
    """CPU scaled dot-product attention: q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev): the score product
    and the weighted sum (the softmax is element-wise and not counted)."""
    batch_heads = query.shape[0] * query.shape[1]
    length, source = query.shape[-2], key.shape[-2]
    return 2 * batch_heads * length * source * (query.shape[-1] + value.shape[-1])


def _raw(formula: Callable[..., int]) -> Callable[..., int]:
    formula._get_raw = True  # FlopCounterMode passes the tensors themselves (their dtypes), not only shapes
    return formula


def _formulas() -> Dict[Any, Callable[..., int]]:
    ops = torch.ops.aten
    formulas: Dict[Any, Callable[..., int]] = {
        ops.mm: _raw(_mm_flops), ops.addmm: _raw(_addmm_flops), ops.bmm: _raw(_bmm_flops),
        ops._scaled_dot_product_flash_attention_for_cpu: _raw(_cpu_attention_flops),
    }
    onednn_linear = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if onednn_linear is not None:
        formulas[onednn_linear] = _raw(_onednn_linear_flops)
    return formulas


def count_flops(fn: Callable[[], Any]) -> Tuple[Any, int]:
    """``fn()``'s result and the floating-point operations it ran (see the module docstring for what counts).

    The count comes from torch's dispatcher. A dispatcher mode sees only the thread that enters it, and several
    inference paths hand work to other threads when torch has two or more (the generator's piece streams, the
    SSL front end beside F0). So ``fn`` runs with one torch thread, and the thread count is restored after it.
    The count is that of the one-thread path. With more threads some paths cut the work differently: the
    generator's pieces each carry a halo, and their number changes with the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with FlopCounterMode(display=False, custom_mapping=_formulas()) as counter:
            result = fn()
    finally:
        torch.set_num_threads(threads)
    return result, counter.get_total_flops()


@torch.inference_mode()
def gemm_gflops_per_second(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], size: int = 1024,
                           repeats: int = 5) -> float:
    """The float32 rate of ``product(a, b)`` on square ``size``-sized matrices at torch's current thread count,
    in GFLOP/s, best of ``repeats``. For large ``size`` this comes close to the cores' FMA ceiling when
    ``product`` is the GEMM kernel that the path under study uses (``modules.onednn_linear.linear`` for
    Echelon's inference path; torch's ``mm`` runs MKL, which stays on AVX2 kernels on AMD CPUs)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    product(a, b)  # primitive creation and first-touch pages outside the timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def speed_up_bound(reference_seconds: float, flops: int, uncounted_seconds: float, gflops_per_second: float) -> float:
    """The largest speed-up over ``reference_seconds`` that a path doing ``flops`` of counted arithmetic can
    reach on a CPU that runs it at ``gflops_per_second`` at best, when ``uncounted_seconds`` of its time is work
    the count leaves out (F0, say) and is taken as already minimal."""
    return reference_seconds / (uncounted_seconds + flops / (gflops_per_second * 1e9))
