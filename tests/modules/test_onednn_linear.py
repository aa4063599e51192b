"""modules.onednn_linear: the oneDNN inference paths compute what torch's reference layers compute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modules.dit_flow import ConvFeedForward
from modules.onednn_linear import (OneDNNConv1d, OneDNNLinear, conv_weight_matrix, linear, stride2_taps3_conv,
                                   stride2_taps3_matrices, time_major_conv1d, use_onednn_linear)


def test_switched_linear_equals_nn_linear_and_keeps_keys():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(48, 96), nn.GELU(), nn.Linear(96, 24, bias=False))
    x = torch.randn(3, 17, 48)
    with torch.no_grad():
        expected = model(x)
    keys = list(model.state_dict())
    assert use_onednn_linear(model) == 2
    assert all(type(m) is OneDNNLinear for m in (model[0], model[2])) and list(model.state_dict()) == keys
    with torch.inference_mode():
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    out = model(x.requires_grad_())  # autograd takes torch's own path and still differentiates
    out.sum().backward()
    assert x.grad is not None
    assert use_onednn_linear(model, enabled=False) == 2 and type(model[0]) is nn.Linear


@pytest.mark.parametrize("kernel, stride, dilation, padding, groups, batch",
                         [(1, 1, 1, 0, 1, 1), (5, 1, 1, 2, 1, 1), (3, 2, 1, 0, 1, 2), (3, 1, 3, 3, 2, 1), (7, 1, 1, 3, 1, 3)])
def test_switched_conv1d_equals_nn_conv1d(kernel, stride, dilation, padding, groups, batch):
    torch.manual_seed(2)
    convs = nn.Sequential(nn.Conv1d(16, 24, kernel, stride, padding, dilation, groups), nn.Conv1d(24, 8, 1))
    x = torch.randn(batch, 16, 57)
    with torch.no_grad():
        expected = convs(x)
    assert use_onednn_linear(convs) == 2 and all(type(c) is OneDNNConv1d for c in convs)
    with torch.inference_mode():
        torch.testing.assert_close(convs(x), expected, rtol=1e-5, atol=1e-5)
    convs(x.requires_grad_()).sum().backward()  # autograd: torch's own path
    assert x.grad is not None
    assert use_onednn_linear(convs, enabled=False) == 2 and type(convs[0]) is nn.Conv1d


@pytest.mark.parametrize("kernel, stride, batch", [(10, 5, 1), (3, 2, 2), (5, 1, 2)])
def test_time_major_conv_equals_conv1d(kernel, stride, batch):
    torch.manual_seed(1)
    conv = nn.Conv1d(8, 12, kernel, stride=stride)
    x = torch.randn(batch, 8, 200)
    with torch.no_grad():
        out = time_major_conv1d(x.transpose(1, 2), conv_weight_matrix(conv.weight).contiguous(), conv.bias, kernel, stride)
        torch.testing.assert_close(out.transpose(1, 2), conv(x), rtol=1e-5, atol=1e-5)
    assert linear(torch.zeros(0, 8), torch.ones(3, 8)).shape == (0, 3)


def test_conv_feed_forward_inference_path_equals_reference():
    """The time-major GEMM path (inference) against the (B, C, T) convolutions (the training path, dropout 0)."""
    torch.manual_seed(2)
    ffn = ConvFeedForward(16, 64, kernel_size=5, p_dropout=0.0)
    x = torch.randn(2, 30, 16)
    mask = torch.ones(2, 1, 30)
    mask[1, :, 21:] = 0
    ffn.train()
    reference = ffn(x, mask).detach()
    ffn.eval()
    with torch.inference_mode():
        torch.testing.assert_close(ffn(x, mask), reference, rtol=1e-5, atol=1e-5)


def test_time_major_kernel_is_a_view_of_the_relaid_weight():
    """No second copy of the weights: the GEMM matrix and the channels-last conv weight view the parameter."""
    from modules.onednn_linear import time_major_kernel

    torch.manual_seed(3)
    conv = nn.Conv1d(6, 10, 5, padding=2)
    x = torch.randn(2, 6, 40)
    with torch.no_grad():
        reference = conv(x)
        matrix = time_major_kernel(conv)
        assert matrix.data_ptr() == conv.weight.data_ptr() and time_major_kernel(conv).data_ptr() == matrix.data_ptr()
        assert conv.weight.unsqueeze(2).is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(conv(x), reference, rtol=1e-5, atol=1e-5)  # same conv, new memory order
        out = time_major_conv1d(F.pad(x.transpose(1, 2), (0, 0, 2, 2)), matrix, conv.bias, 5)
        torch.testing.assert_close(out.transpose(1, 2), reference, rtol=1e-5, atol=1e-5)


def test_linear_with_fused_tanh_gelu_equals_gelu_of_linear():
    torch.manual_seed(3)
    x, weight, bias = torch.randn(2, 9, 20) * 3, torch.randn(14, 20) * 0.3, torch.randn(14)
    expected = F.gelu(F.linear(x, weight, bias), approximate="tanh")
    with torch.inference_mode():  # oneDNN's post-op
        torch.testing.assert_close(linear(x, weight, bias, gelu_tanh=True), expected, rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # torch's own path
        torch.testing.assert_close(linear(x, weight, bias, gelu_tanh=True), expected, rtol=0, atol=0)


@pytest.mark.parametrize("length", [3, 4, 5, 6, 7, 40, 401, 402])  # odd and even output counts, one frame
def test_stride2_taps3_conv_equals_conv1d(length):
    """The Winograd-style 3-tap stride-2 conv against float64 ``conv1d``: every output frame, odd or even count."""
    torch.manual_seed(length)
    weight, bias, x = torch.randn(24, 16, 3), torch.randn(24), torch.randn(length, 16)
    with torch.no_grad():
        got = stride2_taps3_conv(x[None], stride2_taps3_matrices(weight), bias)[0]
        want = F.conv1d(x.double().t()[None], weight.double(), bias.double(), stride=2)[0].t()
        batch = stride2_taps3_conv(torch.stack([x, -x]), stride2_taps3_matrices(weight), bias)
    assert got.shape == want.shape == ((length - 3) // 2 + 1, 24)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    assert torch.equal(batch[0], got)  # items of a batch are computed one by one, as alone
    torch.testing.assert_close(batch[1].double(), 2 * bias.double() - want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="shorter than the conv kernel"):
        stride2_taps3_conv(x[None, :2], stride2_taps3_matrices(weight), bias)
