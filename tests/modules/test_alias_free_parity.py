"""Parity of the anti-aliased SnakeBeta (``Activation1d``) with the official module, plus its fast path."""

from __future__ import annotations

import pytest
import torch

from modules.activations import Snake, SnakeBeta
from modules.alias_free import Activation1d, kaiser_sinc_filter1d, set_polyphase
from modules.vocoders.amp import AMPBlock, AMPGenerator
from tests.helpers import float_state_dict, load_fixture

BLOCK = "Activation1d_SnakeBeta"


def _fixture_block():
    fx = load_fixture("hierspeechpp/synth_modules_tiny.pt")
    return fx["config"][BLOCK], fx["state_dict"][BLOCK], fx["inputs"][BLOCK], fx["outputs"][BLOCK]


def _build(cfg) -> Activation1d:
    return Activation1d(SnakeBeta(cfg["channels"], alpha_logscale=True))


@pytest.mark.parametrize("polyphase", [False, True])
def test_activation1d_snakebeta_matches_official(polyphase: bool) -> None:
    cfg, sd, inputs, outputs = _fixture_block()
    module = _build(cfg)
    module.load_state_dict(float_state_dict(sd), strict=True)
    module.eval()
    module.polyphase = polyphase
    with torch.no_grad():
        y = module(inputs["x"])
    assert y.shape == outputs["y"].shape
    assert (y - outputs["y"]).abs().max().item() <= 1e-4


def test_fresh_filters_are_close_to_stored_ones() -> None:
    """Stored filters are the constructor values rounded to fp16; ours must be the same design."""
    cfg, sd, _, _ = _fixture_block()
    module = _build(cfg)
    for key in ("upsample.filter", "downsample.lowpass.filter"):
        assert module.state_dict()[key].shape == (1, 1, 12)
        assert (module.state_dict()[key] - sd[key].float()).abs().max().item() < 2e-4
    taps = kaiser_sinc_filter1d(0.25, 0.3, 12).flatten()
    assert torch.allclose(taps.sum(), torch.tensor(1.0))
    assert torch.allclose(taps, taps.flip(0))


@pytest.mark.parametrize("length", [1, 2, 7, 64])
def test_polyphase_equals_reference_with_grad(length: int) -> None:
    torch.manual_seed(length)
    module = Activation1d(SnakeBeta(4, alpha_logscale=True))
    with torch.no_grad():
        module.act.alpha.normal_(0, 0.5)
        module.act.beta.normal_(0, 0.5)
    x = torch.randn(2, 4, length, requires_grad=True) * 3
    ref = module(x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    module.polyphase = True
    fast = module(x)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), x)
    assert (ref - fast).abs().max().item() < 1e-5
    assert (g_ref - g_fast).abs().max().item() < 1e-4


def test_snake_variants_formula() -> None:
    x = torch.linspace(-3, 3, 50).view(1, 2, 25)
    sb = SnakeBeta(2, alpha_logscale=True)
    with torch.no_grad():
        sb.alpha.copy_(torch.tensor([0.3, -0.2]))
        sb.beta.copy_(torch.tensor([-0.1, 0.4]))
    a = torch.exp(sb.alpha).view(1, 2, 1)
    b = torch.exp(sb.beta).view(1, 2, 1)
    assert torch.allclose(sb(x), x + torch.sin(a * x) ** 2 / (b + 1e-9))
    s = Snake(2, alpha=0.5)
    assert torch.allclose(s(x), x + torch.sin(0.5 * x) ** 2 / 0.5)
    with pytest.raises(ValueError, match="channels"):
        SnakeBeta(0)


def test_amp_block_names_and_generator_shapes() -> None:
    block = AMPBlock(8, 3, (1, 3, 5))
    keys = set(block.state_dict())
    assert {"convs1.2.weight_g", "convs2.0.weight_v", "activations.5.act.beta",
            "activations.0.upsample.filter", "activations.3.downsample.lowpass.filter"} <= keys
    gen = AMPGenerator(20, 32, (4, 2), (8, 4), (3, 5), ((1, 3, 5), (1, 3, 5)))
    assert "resblocks.3.convs1.0.weight_v" in gen.state_dict()       # stage 1, kernel 1
    assert gen.state_dict()["ups.0.weight_g"].shape == (32, 1, 1)   # ConvTranspose: g over input channels
    x = torch.randn(2, 20, 9)
    gen.eval()
    with torch.no_grad():
        y = gen(x)
        assert y.shape == (2, 1, 9 * 8) and y.abs().max() <= 1
        set_polyphase(gen, True)
        gen.fold_weight_norm()
        assert (gen(x) - y).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="differ in length"):
        AMPGenerator(20, 32, (4, 2), (8,))
