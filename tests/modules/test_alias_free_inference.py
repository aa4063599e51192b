"""The inference (scratch-buffer, in-place SnakeBeta) polyphase path of ``Activation1d`` against the reference."""

from __future__ import annotations

import pytest
import torch

from modules.activations import SnakeBeta
from modules.alias_free import Activation1d


def _module(channels: int, seed: int) -> Activation1d:
    torch.manual_seed(seed)
    module = Activation1d(SnakeBeta(channels, alpha_logscale=True)).eval()
    with torch.no_grad():
        module.act.alpha.normal_(0, 0.5)
        module.act.beta.normal_(0, 0.5)
    return module


@pytest.mark.parametrize("length", [1, 5, 16, 33, 257])
def test_inference_path_equals_reference(length: int) -> None:
    module = _module(3, length)
    with torch.no_grad():
        x = torch.randn(2, 3, length) * 3
        ref = module(x)
        module.polyphase = True
        fast = module(x)
        # a second call reuses the scratch buffers: the first output must be untouched
        other = module(torch.randn(2, 3, length + 40))
        again = module(x)
        # a filter change (state_dict load) must invalidate the cached matrices
        module.downsample.lowpass.filter.mul_(0.5)
        fast_half = module(x)
        module.polyphase = False
        ref_half = module(x)
    assert fast.shape == x.shape and other.shape == (2, 3, length + 40)
    assert (ref - fast).abs().max().item() < 1e-5
    assert torch.equal(fast, again)
    assert (ref_half - fast_half).abs().max().item() < 1e-5


def test_inference_path_is_used_only_without_grad(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(2, 0)
    module.polyphase = True
    calls = []
    original = Activation1d._forward_polyphase_scratch
    monkeypatch.setattr(Activation1d, "_forward_polyphase_scratch",
                        lambda self, x: calls.append(1) or original(self, x))
    x = torch.randn(1, 2, 64, requires_grad=True)
    y = module(x)
    assert y.requires_grad and not calls
    with torch.no_grad():
        module(x)
    assert len(calls) == 1


def test_inference_mode_then_no_grad() -> None:
    """Scratch buffers made under inference_mode must not be reused (read-only) outside it."""
    module = _module(2, 1)
    module.polyphase = True
    x = torch.randn(1, 2, 50)
    with torch.inference_mode():
        first = module(x)
    with torch.no_grad():
        second = module(x)
    assert torch.equal(first, second)
