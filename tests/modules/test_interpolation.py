"""modules.interpolation: windows of F.interpolate(mode="linear") computed on their own equal torch's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modules.interpolation import input_span, interpolate_window, torch_fuses_positions


def test_this_torch_is_reproduced():
    assert torch_fuses_positions() in (True, False)


@pytest.mark.parametrize("n_in, factor", [(9, 3.0), (1001, 1.5), (80_000, 3.0), (1_200_001, 3.0), (350_003, 1.5)])
@pytest.mark.parametrize("grad", [False, True])
def test_windows_equal_the_whole_interpolation(n_in, factor, grad):
    """Positions far into a long signal are where a differently rounded position would show (~1e-3)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, n_in)
    n_out = int(n_in * factor)
    whole = F.interpolate(x, size=n_out, mode="linear")
    for lo, hi in [(0, min(n_out, 700)), (n_out // 2, min(n_out, n_out // 2 + 517)), (max(0, n_out - 300), n_out)]:
        a, b = input_span(n_in, n_out, lo, hi)
        assert 0 <= a < b <= n_in
        with torch.set_grad_enabled(grad):  # numba kernel without autograd, torch ops with it
            window = interpolate_window(x[..., a:b], n_out, lo, hi, offset=a, n_in=n_in)
        assert window.shape == (2, 3, hi - lo)
        torch.testing.assert_close(window, whole[..., lo:hi], rtol=0, atol=1e-6)
    # the whole signal as its own window
    torch.testing.assert_close(interpolate_window(x, n_out, 0, n_out), whole, rtol=0, atol=1e-6)
