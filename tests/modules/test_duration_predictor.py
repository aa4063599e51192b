"""modules/duration_predictor.py: training NLL of the SDP and the deterministic predictor (behaviour)."""

import pytest
import torch

from modules.duration_predictor import DurationPredictor, StochasticDurationPredictor


def test_sdp_training_nll_is_finite_and_trains():
    torch.manual_seed(0)
    dp = StochasticDurationPredictor(8, 8, 3, 0.0, 4, gin_channels=4)
    x = torch.randn(2, 8, 7)
    mask = torch.ones(2, 1, 7)
    mask[1, :, 5:] = 0
    w = torch.randint(1, 6, (2, 1, 7)).float() * mask
    g = torch.randn(2, 4, 1)
    noise = torch.randn(2, 2, 7)
    nll = dp(x, mask, w=w, g=g, noise=noise)
    assert nll.shape == (2,) and bool(torch.isfinite(nll).all())
    # Same noise -> same value; a padded item is unaffected by its padding.
    assert torch.equal(nll, dp(x, mask, w=w, g=g, noise=noise))
    alone = dp(x[1:, :, :5], mask[1:, :, :5], w=w[1:, :, :5], g=g[1:], noise=noise[1:, :, :5])
    torch.testing.assert_close(alone, nll[1:], rtol=1e-5, atol=1e-4)
    opt = torch.optim.Adam(dp.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = dp(x, mask, w=w, g=g, noise=noise).sum() / mask.sum()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.5
    with pytest.raises(ValueError, match="durations"):
        dp(x, mask)


def test_deterministic_predictor_shapes_mask_and_names():
    torch.manual_seed(0)
    dp = DurationPredictor(8, 16, 3, 0.5, gin_channels=4).eval()
    assert set(dp.state_dict()) == {
        "conv_1.weight", "conv_1.bias", "norm_1.gamma", "norm_1.beta", "conv_2.weight", "conv_2.bias",
        "norm_2.gamma", "norm_2.beta", "proj.weight", "proj.bias", "cond.weight", "cond.bias",
    }
    mask = torch.ones(2, 1, 9)
    mask[1, :, 6:] = 0
    x = torch.randn(2, 8, 9, requires_grad=True)
    logw = dp(x, mask, g=torch.randn(2, 4, 1))
    assert logw.shape == (2, 1, 9)
    assert float(logw[1, :, 6:].detach().abs().max()) == 0.0
    # The input is detached: no gradient reaches the text encoder.
    logw.sum().backward()
    assert x.grad is None
