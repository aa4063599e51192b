"""modules.weight_norm.move_towards: the weights between two layers built alike, weight-normed ones by their
effective weight."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modules.weight_norm import move_towards, weight_norm


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(weight_norm(nn.Conv1d(3, 4, 5)), nn.LeakyReLU(0.1),
                         weight_norm(nn.ConvTranspose1d(4, 2, 8, stride=4)), nn.Conv1d(2, 1, 3))


def _weights(net: nn.Module) -> list:
    out = []
    for layer in (net[0], net[2]):
        hook = next(iter(layer._forward_pre_hooks.values()))
        out.append(hook.compute(layer).detach().clone())
    return out + [net[3].weight.detach().clone(), net[0].bias.detach().clone()]


@pytest.mark.parametrize("weight", [0.0, 0.35, 1.0])
def test_effective_weights_land_between_the_two(weight):
    tuned, base = _net(1), _net(2)
    before, anchor = _weights(tuned), _weights(base)
    move_towards(tuned, base, weight)
    for got, t, b in zip(_weights(tuned), before, anchor):
        torch.testing.assert_close(got, b + weight * (t - b), rtol=1e-5, atol=1e-6)
    x = torch.randn(1, 3, 40)
    if weight == 0.0:  # the anchor's function, through the forward hooks (g and v re-expressed)
        torch.testing.assert_close(tuned(x), base(x), rtol=1e-5, atol=1e-6)


def test_g_and_v_moved_apart_would_not_land_between():
    """Why the effective weight: v is a direction of any length, so halfway between two (g, v) pairs is not
    halfway between the layers' weights when their v differ in length."""
    tuned, base = _net(1), _net(2)
    with torch.no_grad():
        tuned[0].weight_v.mul_(3.0)  # the same layer: v three times longer
    wanted = [b + 0.5 * (t - b) for t, b in zip(_weights(tuned), _weights(base))][0]
    naive = _net(1)
    with torch.no_grad():
        naive[0].weight_v.mul_(3.0)
        for name in ("weight_g", "weight_v"):
            getattr(naive[0], name).lerp_(getattr(base[0], name), 0.5)
    move_towards(tuned, base, 0.5)
    assert (_weights(naive)[0] - wanted).abs().max() > 1e-3
    torch.testing.assert_close(_weights(tuned)[0], wanted, rtol=1e-5, atol=1e-6)


def test_refuses_what_cannot_be_interpolated():
    with pytest.raises(ValueError, match="between 0 and 1"):
        move_towards(_net(1), _net(2), 1.5)
    with pytest.raises(ValueError, match="not built alike"):
        move_towards(_net(1), nn.Sequential(nn.Conv1d(3, 4, 5)), 0.5)
    other = _net(2)
    other[3] = nn.Conv1d(2, 1, 5)
    with pytest.raises(ValueError, match="counterpart of its shape"):
        move_towards(_net(1), other, 0.5)
