"""wav2vec2's first front-end conv as one GEMM over unfolded windows: same numbers, same state_dict keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from processors.ssl import _MonoStridedConv1d, build_random_ssl


@pytest.mark.parametrize("bias", [True, False])
def test_mono_strided_conv_matches_conv1d(bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 8, 10, stride=5, bias=bias)
    fast = _MonoStridedConv1d(conv)
    x = torch.randn(3, 1, 1003)
    with torch.no_grad():
        assert torch.allclose(fast(x), conv(x), atol=1e-6)
    assert set(fast.state_dict()) == set(conv.state_dict())
    assert not _MonoStridedConv1d.supports(nn.Conv1d(1, 8, 10, stride=5, padding=2))
    assert not _MonoStridedConv1d.supports(nn.Conv1d(2, 8, 10, stride=5))


def test_extractor_uses_it_and_loads_plain_checkpoints() -> None:
    extractor = build_random_ssl()
    assert isinstance(extractor.model.feature_extractor.conv_layers[0].conv, _MonoStridedConv1d)
    plain = build_random_ssl(seed=1)
    plain.model.feature_extractor.conv_layers[0].conv = nn.Conv1d(1, 16, 10, stride=5, bias=False)
    plain.model.feature_extractor.conv_layers[0].conv.load_state_dict(
        extractor.model.feature_extractor.conv_layers[0].conv.state_dict(), strict=True)
    plain.model.load_state_dict(extractor.model.state_dict(), strict=True)
    wav = torch.randn(2, 3200)
    assert torch.allclose(extractor(wav)[0], plain(wav)[0], atol=1e-5)
