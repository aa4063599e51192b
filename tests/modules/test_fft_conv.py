"""Overlap-save FFT convolution (modules/fft_conv.py) and its use in the channels-last AMP blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import modules.fft_conv as fft_conv
import modules.vocoders.amp as amp
from modules import fused_snake
from modules.fft_conv import fft_convolutions_wanted
from modules.vocoders.amp import AMPBlock, set_channels_last_inference
from modules.weight_norm import fold_weight_norm
from tests.helpers import randomize_amp_blocks


@pytest.mark.parametrize("c_in, c_out, kernel, dilation, padding, length, block, bias", [
    (8, 8, 11, 1, 5, 1000, 64, True),
    (6, 10, 7, 3, 9, 333, 64, False),    # C_in != C_out, a length that is no multiple of the step
    (4, 4, 11, 5, 25, 40, 128, True),    # a signal shorter than one block
    (5, 3, 3, 2, 0, 77, 32, True),       # no padding: shorter output
    (3, 3, 1, 1, 0, 10, 8, False),
])
def test_equals_conv1d(c_in, c_out, kernel, dilation, padding, length, block, bias):
    torch.manual_seed(length)
    x = torch.randn(1, c_in, length)
    weight = torch.randn(c_out, c_in, kernel) / (c_in * kernel) ** 0.5
    b = torch.randn(c_out) if bias else None
    ref = F.conv1d(x.double(), weight.double(), None if b is None else b.double(), padding=padding,
                   dilation=dilation)[0].t()
    out = fft_conv.fft_conv_time_major(x[0].t().contiguous(), weight, b, dilation, padding, block)
    assert out.shape == ref.shape and out.is_contiguous() and out.dtype == torch.float32
    assert float((out.double() - ref).abs().max()) <= 2e-5 * float(ref.abs().max())


def test_block_shorter_than_twice_the_span_is_refused():
    with pytest.raises(ValueError, match="block 32 is shorter than twice the kernel span 21"):
        fft_conv.fft_conv_time_major(torch.zeros(100, 2), torch.zeros(2, 2, 11), None, 2, 10, 32)


def test_block_rule_only_picks_wide_kernels_at_many_channels_with_room_for_the_span():
    assert fft_conv.fft_block_for(32, 32, 11, 1, 50_000) is None  # transforms cost more than they save
    assert fft_conv.fft_block_for(128, 128, 3, 1, 50_000) is None
    assert fft_conv.fft_block_for(128, 128, 7, 3, 50_000) is None
    assert fft_conv.fft_block_for(128, 128, 11, 1, 100) is None  # too short for the per-call spectrum
    assert fft_conv.fft_block_for(256, 256, 11, 1, 1000) == 32
    assert fft_conv.fft_block_for(256, 256, 11, 1, 500) is None
    assert fft_conv.fft_block_for(256, 256, 11, 3, 1000) is None
    picked = 0
    for channels in (64, 128, 256, 512):
        for kernel in (3, 5, 7, 9, 11, 13):
            for dilation in (1, 2, 3, 5, 7):
                for length in (500, 1000, 2500, 5000, 20_000):
                    block = fft_conv.fft_block_for(channels, channels, kernel, dilation, length)
                    if block is not None:
                        picked += 1
                        assert block >= 2 * ((kernel - 1) * dilation + 1)
    assert picked > 50


def test_wanted_follows_the_setting_the_environment_and_the_cpu(monkeypatch):
    monkeypatch.delenv("ECHELON_FFT_CONVOLUTIONS", raising=False)
    assert fft_convolutions_wanted("on") and not fft_convolutions_wanted("off")
    monkeypatch.setattr(fft_conv, "cpu_has_avx512", lambda: True)
    assert not fft_convolutions_wanted("auto")
    monkeypatch.setattr(fft_conv, "cpu_has_avx512", lambda: False)
    assert fft_convolutions_wanted("auto")
    monkeypatch.setenv("ECHELON_FFT_CONVOLUTIONS", "off")
    assert not fft_convolutions_wanted("auto") and fft_convolutions_wanted("on")
    monkeypatch.setenv("ECHELON_FFT_CONVOLUTIONS", "sometimes")
    with pytest.raises(fft_conv.FFTConvolutionSettingError, match="ECHELON_FFT_CONVOLUTIONS='sometimes'"):
        fft_convolutions_wanted("auto")
    with pytest.raises(fft_conv.FFTConvolutionSettingError, match="'fast'"):
        fft_convolutions_wanted("fast")


@pytest.mark.skipif(not fused_snake.available(), reason="numba is not installed")
@pytest.mark.parametrize("channels, kernel, length", [(64, 11, 4000), (128, 7, 4300), (256, 11, 1000)])
def test_amp_block_with_fft_convolutions_equals_direct(monkeypatch, channels, kernel, length):
    """AMP blocks of the synthesizer's stage shapes (64-, 32- and 128-sample blocks): the convolutions the rule
    picks go through the FFT (counted), the others stay direct, and the block's output matches the direct path."""
    torch.manual_seed(channels)
    block = AMPBlock(channels, kernel, (1, 3, 5)).eval()
    randomize_amp_blocks(block)
    fold_weight_norm(block)
    x = torch.randn(1, channels, length)
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    calls = []
    real = fft_conv.fft_conv_time_major
    monkeypatch.setattr(amp, "fft_conv_time_major", lambda *a: calls.append(a[3:]) or real(*a))
    with torch.no_grad():
        set_channels_last_inference(block, fft="off")
        direct = block.forward_channels_last(x4)
        assert calls == []
        set_channels_last_inference(block, fft="on")
        assert block.fft_convolutions
        fast = block.forward_channels_last(x4)
    rule = fft_conv.fft_block_for
    expected = [(c.dilation[0], c.padding[0], rule(channels, channels, kernel, c.dilation[0], length))
                for c in list(block.convs1) + list(block.convs2)]
    expected = sorted(e for e in expected if e[2] is not None)
    assert len(expected) >= 4 and sorted(calls) == expected
    assert fast.shape == direct.shape and fast.is_contiguous(memory_format=torch.channels_last)
    assert float((fast - direct).abs().max()) <= 1e-5 * float(direct.abs().max())
