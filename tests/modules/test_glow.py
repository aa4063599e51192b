"""Glow flow blocks (modules/glow.py): invertibility, exact log-determinants, DDI, squeeze round trip."""

import pytest
import torch

from modules.glow import ActNorm, GlowCoupling, GlowDecoder, InvConvNear, glow_mle_loss, squeeze, unsqueeze


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-zero everything (ActNorm and the coupling's zero-initialised ``end`` included) so no flow is the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("logs") or name.endswith("bias") or ".end." in f".{name}":
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def _decoder(channels=4, n_split=4, n_sqz=2, gin=0):
    torch.manual_seed(0)
    dec = GlowDecoder(channels, hidden_channels=8, kernel_size=3, dilation_rate=2, n_blocks=3, n_layers=2,
                      n_split=n_split, n_sqz=n_sqz, gin_channels=gin)
    _randomize(dec)
    return dec.eval()


@pytest.mark.parametrize("n_split,n_sqz", [(4, 2), (2, 1), (8, 2), (4, 4)])
def test_decoder_forward_then_reverse_is_identity_on_valid_frames(n_split, n_sqz):
    dec = _decoder(n_split=n_split, n_sqz=n_sqz, gin=3)
    x = torch.randn(2, 4, 16)
    mask = torch.ones(2, 1, 16)
    mask[1, :, 12:] = 0
    g = torch.randn(2, 3, 1)
    with torch.no_grad():
        z, logdet = dec(x, mask, g=g)
        back = dec(z, mask, g=g, reverse=True)
    assert float((z - x * mask).abs().max()) > 1e-2  # the flow really transforms
    assert float(((back - x) * mask).abs().max()) < 1e-5
    assert float((back * (1 - mask)).abs().max()) == 0.0
    assert torch.isfinite(logdet).all()


def test_decoder_logdet_equals_log_abs_det_of_the_jacobian():
    dec = _decoder()
    x = torch.randn(1, 4, 4, dtype=torch.float64)
    dec = dec.double()
    mask = torch.ones(1, 1, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: dec(v, mask)[0], x)  # (1, 4, 4, 1, 4, 4)
    _, expected = torch.linalg.slogdet(jac.reshape(16, 16))
    _, logdet = dec(x, mask)
    assert abs(float(logdet.detach()[0]) - float(expected)) < 1e-8


@pytest.mark.parametrize("flow", [lambda: ActNorm(4), lambda: InvConvNear(4, 4),
                                  lambda: GlowCoupling(4, 8, 3, 1, 2, gin_channels=0)])
def test_single_flows_are_invertible_with_exact_logdet(flow):
    torch.manual_seed(1)
    f = flow().double().eval()
    _randomize(f, 3)
    x = torch.randn(1, 4, 3, dtype=torch.float64)
    mask = torch.ones(1, 1, 3, dtype=torch.float64)
    y, logdet = f(x, mask)
    assert float((f(y, mask, reverse=True) - x).detach().abs().max()) < 1e-10
    jac = torch.autograd.functional.jacobian(lambda v: f(v, mask)[0], x).reshape(12, 12)
    assert abs(float(logdet.detach()[0]) - float(torch.linalg.slogdet(jac)[1])) < 1e-8


def test_actnorm_data_dependent_init_whitens_the_valid_frames():
    norm = ActNorm(3, ddi=True)
    x = torch.randn(2, 3, 10) * torch.tensor([[[5.0], [0.1], [2.0]]]) + torch.tensor([[[3.0], [-1.0], [0.0]]])
    mask = torch.ones(2, 1, 10)
    mask[1, :, 6:] = 0
    x = x + (1 - mask) * 100.0  # padding must not enter the statistics
    y, _ = norm(x, mask)
    assert norm.initialized
    n = mask.sum()
    mean = (y * mask).sum([0, 2]) / n
    var = (y * y * mask).sum([0, 2]) / n - mean**2
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(var, torch.ones(3), atol=1e-4, rtol=0)
    before = norm.logs.detach().clone()
    norm(torch.randn(2, 3, 10), mask)  # initialised once only
    assert torch.equal(before, norm.logs.detach())


def test_squeeze_round_trip_and_mask_of_groups():
    x = torch.arange(2 * 3 * 6, dtype=torch.float32).view(2, 3, 6)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    xs, ms = squeeze(x, mask, 2)
    assert xs.shape == (2, 6, 3) and ms.shape == (2, 1, 3)
    assert torch.equal(xs[0, 3:, 0], x[0, :, 1])  # channel s*C + c holds frame 2t + s
    back, mask_back = unsqueeze(xs, ms, 2)
    assert torch.equal(mask_back, mask)
    assert torch.equal(back, x * mask)


def test_invconv_rejects_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="n_split"):
        InvConvNear(6, 4)


def test_mle_loss_of_standard_normal_frames_is_the_gaussian_entropy():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 4000)
    mask = torch.ones(4, 1, 4000)
    loss = glow_mle_loss(z, torch.zeros_like(z), torch.zeros_like(z), torch.zeros(4), mask)
    assert abs(float(loss) - 0.5 * (1 + torch.log(torch.tensor(2 * torch.pi)).item())) < 1e-2
