"""utils.flops: FLOPs counted at torch's dispatcher on real computations, work handed to other threads, the
GEMM rate and the speed-up bound."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F

from modules.onednn_linear import linear, onednn_available
from utils.flops import count_flops, gemm_gflops_per_second, speed_up_bound


def test_linear_counts_two_flops_per_multiply_add_through_torch_and_onednn():
    x, weight, bias = torch.randn(7, 32), torch.randn(48, 32), torch.randn(48)
    expected = 2 * 7 * 48 * 32
    out, flops = count_flops(lambda: F.linear(x, weight, bias))
    assert flops == expected
    assert torch.allclose(out, x @ weight.t() + bias, atol=1e-5)
    if onednn_available():  # the oneDNN fused linear, a custom operator that torch's counter does not know
        with torch.inference_mode():
            out, flops = count_flops(lambda: linear(x.unsqueeze(0), weight, bias))
        assert flops == expected
        assert out.shape == (1, 7, 48)


def test_convolutions_and_complex_products():
    x, weight = torch.randn(2, 16, 100), torch.randn(24, 16, 5)
    _, flops = count_flops(lambda: F.conv1d(x, weight, dilation=3))
    assert flops == 2 * 2 * 24 * 16 * 5 * (100 - 4 * 3)  # batch x C_out x C_in x taps x output samples
    a = torch.randn(6, 10, dtype=torch.complex64)
    b = torch.randn(10, 4, dtype=torch.complex64)
    _, flops = count_flops(lambda: a @ b)
    assert flops == 4 * 2 * 6 * 10 * 4  # a complex multiply-add is four real ones


def test_cpu_attention_is_counted():
    q, k, v = torch.randn(2, 4, 30, 16), torch.randn(2, 4, 50, 16), torch.randn(2, 4, 50, 8)
    with torch.inference_mode():
        out, flops = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert flops == 2 * 2 * 4 * 30 * 50 * (16 + 8)  # scores q k^T and the weighted sum of v
    reference = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1) @ v
    assert torch.allclose(out, reference, atol=1e-5)


def _products_split_over_threads(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eight products, half of them in a pool thread when torch has 2+ threads (as the generator's pieces)."""
    if torch.get_num_threads() < 2:
        return torch.stack([a @ b for _ in range(8)])
    with ThreadPoolExecutor(1) as pool:
        side = pool.submit(lambda: [a @ b for _ in range(4)])
        mine = [a @ b for _ in range(4)]
        return torch.stack(mine + side.result())


def test_work_that_would_go_to_other_threads_is_counted_and_the_thread_count_restored():
    a, b = torch.randn(20, 30), torch.randn(30, 40)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out, flops = count_flops(lambda: _products_split_over_threads(a, b))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert flops == 8 * 2 * 20 * 30 * 40
    assert torch.allclose(out[5], a @ b)


def test_gemm_rate_is_flops_over_the_best_time():
    size, pause = 100, 0.01

    def slow_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        time.sleep(pause)
        return x @ y

    rate = gemm_gflops_per_second(slow_product, size=size, repeats=2)
    ceiling = 2 * size ** 3 / pause / 1e9  # each call takes at least the pause
    assert 0.5 * ceiling < rate <= ceiling


def test_speed_up_bound():
    # 100 GFLOP at 100 GFLOP/s is 1 s, plus 0.5 s of uncounted work, against a 6 s reference
    assert speed_up_bound(6.0, 100 * 10 ** 9, 0.5, 100.0) == pytest.approx(4.0)
