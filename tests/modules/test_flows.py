"""modules/spline.py and modules/flows.py: invertibility, log-determinants (vs autograd), checkpoint names."""

import pytest
import torch
from torch.autograd.functional import jacobian

from modules.flows import ConvFlow, DDSConv, ElementwiseAffine, Flip, Log, ResidualCouplingBlock, ResidualCouplingLayer
from modules.spline import piecewise_rational_quadratic_transform, rational_quadratic_spline


def _randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Replace the identity initialisation (zeroed projections) so the flows do real work."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


def test_spline_inverse_and_logdet_match_autograd():
    torch.manual_seed(0)
    n, k = 40, 6
    x = (torch.rand(n) * 2 - 1) * 4.0
    x[:3] = torch.tensor([-6.0, 5.5, 4.999])  # two in the linear tails, one near the bound
    w, h, d = torch.randn(n, k), torch.randn(n, k), torch.randn(n, k - 1)
    # float64: the inverse of a steep bin loses ~1e-4 in float32, which would blur the check.
    x, w, h, d = x.double(), w.double(), h.double(), d.double()
    y, lad = piecewise_rational_quadratic_transform(x, w, h, d, tails="linear", tail_bound=5.0)
    assert torch.equal(y[:2], x[:2]) and torch.equal(lad[:2], torch.zeros(2))
    back, lad_inv = piecewise_rational_quadratic_transform(y, w, h, d, inverse=True, tails="linear", tail_bound=5.0)
    assert torch.allclose(back, x, atol=1e-9)
    assert torch.allclose(lad_inv, -lad, atol=1e-9)
    # Element-wise map: the Jacobian is diagonal; compare its log with the returned log-det.
    jac = jacobian(lambda v: piecewise_rational_quadratic_transform(v, w, h, d, tails="linear", tail_bound=5.0)[0], x)
    assert torch.allclose(torch.log(torch.diagonal(jac)), lad, atol=1e-9)
    # Monotonic increasing on a sorted grid.
    grid = torch.linspace(-5, 5, 200, dtype=torch.float64)
    yg, _ = piecewise_rational_quadratic_transform(grid, w[:1].expand(200, k), h[:1].expand(200, k),
                                                   d[:1].expand(200, k - 1), tails="linear", tail_bound=5.0)
    assert bool((yg[1:] > yg[:-1]).all())
    assert abs(float(yg[0]) + 5) < 1e-5 and abs(float(yg[-1]) - 5) < 1e-5


def test_spline_rejects_out_of_range_and_unknown_tails():
    with pytest.raises(ValueError, match="outside"):
        rational_quadratic_spline(torch.tensor([1.5]), torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="tails"):
        piecewise_rational_quadratic_transform(torch.zeros(1), torch.zeros(1, 3), torch.zeros(1, 3),
                                               torch.zeros(1, 2), tails="cubic")


def _check_flow(flow, x, mask, g=None):
    y, logdet = flow(x, mask, g=g)
    back = flow(y, mask, g=g, reverse=True)
    assert torch.allclose(back * mask, x * mask, atol=1e-4)
    # Log-det of item 0 over its valid frames against the autograd Jacobian.
    valid = int(mask[0, 0].sum())
    x0 = x[:1, :, :valid]

    def f(v):
        return flow(v, mask[:1, :, :valid], g=None if g is None else g[:1])[0].flatten()

    jac = jacobian(f, x0).reshape(x0.numel(), x0.numel())
    assert torch.allclose(torch.slogdet(jac)[1], logdet[0], atol=2e-3), (torch.slogdet(jac)[1], logdet[0])
    return y


def test_convflow_coupling_affine_and_log_flows():
    torch.manual_seed(1)
    mask = torch.ones(2, 1, 9)
    mask[1, :, 6:] = 0
    x = torch.randn(2, 2, 9) * 2
    cf = ConvFlow(2, 8, 3, n_layers=3, num_bins=10, tail_bound=5.0)
    _randomise(cf, 1)
    g = torch.randn(2, 8, 9)
    _check_flow(cf, x, mask, g)
    assert cf.state_dict()["proj.weight"].shape == (29, 8, 1)
    assert {"convs.convs_sep.2.weight", "convs.convs_1x1.0.bias", "convs.norms_1.1.gamma", "convs.norms_2.2.beta"} <= set(cf.state_dict())

    ea = ElementwiseAffine(2)
    _randomise(ea, 2)
    _check_flow(ea, x, mask)
    assert ea.state_dict()["m"].shape == (2, 1)

    y, logdet = Flip()(x, mask)
    assert torch.equal(y, x.flip(1)) and torch.equal(logdet, torch.zeros(2))

    w = torch.rand(2, 1, 9) * 5 + 0.5
    lw, ld = Log()(w, mask)
    assert torch.allclose(Log()(lw, mask, reverse=True), w * mask, atol=1e-5)
    assert torch.allclose(ld, -(torch.log(w) * mask).sum((1, 2)), atol=1e-5)


@pytest.mark.parametrize("mean_only", [True, False])
def test_residual_coupling_layer(mean_only):
    torch.manual_seed(2)
    layer = ResidualCouplingLayer(6, 8, 5, 1, 2, gin_channels=4, mean_only=mean_only)
    # Zero-initialised post: the coupling starts as the identity.
    x = torch.randn(2, 6, 10)
    mask = torch.ones(2, 1, 10)
    mask[1, :, 7:] = 0
    assert torch.allclose(layer(x * mask, mask)[0], x * mask)
    _randomise(layer, 3)
    g = torch.randn(2, 4, 1)
    _check_flow(layer, x * mask, mask, g)
    assert layer.state_dict()["post.weight"].shape == ((3 if mean_only else 6), 8, 1)


def test_residual_coupling_block_layout_and_inverse():
    block = ResidualCouplingBlock(6, 8, 5, 1, 2, n_flows=4, gin_channels=4)
    keys = block.state_dict().keys()
    assert {k.split(".")[1] for k in keys} == {"0", "2", "4", "6"}
    _randomise(block, 4)
    mask = torch.ones(2, 1, 10)
    mask[1, :, 7:] = 0
    x = torch.randn(2, 6, 10) * mask
    g = torch.randn(2, 4, 1)
    z = block(x, mask, g=g)
    assert not torch.allclose(z, x)
    assert torch.allclose(block(z, mask, g=g, reverse=True), x, atol=1e-4)


def test_ddsconv_masks_and_dilations():
    conv = DDSConv(4, 3, 3)
    assert [c.dilation[0] for c in conv.convs_sep] == [1, 3, 9]
    mask = torch.ones(1, 1, 20)
    mask[..., 15:] = 0
    with torch.no_grad():
        y = conv(torch.randn(1, 4, 20), mask)
    assert float(y[..., 15:].abs().max()) == 0.0
