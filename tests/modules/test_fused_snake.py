"""The fused channels-last anti-aliased SnakeBeta kernel and the channels-last AMP-block path vs the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modules import fused_snake
from modules.activations import SnakeBeta
from modules.alias_free import Activation1d, _polyphase_up_taps
from modules.vocoders.amp import AMPBlock, average_blocks, build_amp_blocks, set_channels_last_inference
from modules.weight_norm import fold_weight_norm
from tests.helpers import randomize_amp_blocks

pytestmark = pytest.mark.skipif(not fused_snake.available(), reason="numba is not installed")


def _activation(channels: int, seed: int, spread: float = 1.0) -> Activation1d:
    torch.manual_seed(seed)
    module = Activation1d(SnakeBeta(channels, alpha_logscale=True)).eval().requires_grad_(False)
    module.act.alpha.normal_(0, spread)
    module.act.beta.normal_(0, 0.5)
    return module


def _fused(module: Activation1d, x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) in, (B, C, T) out through the kernel's (B, T, C) layout."""
    even, odd = _polyphase_up_taps(module.upsample.filter)
    freq, inv_mag = module.act.coefficients()
    rows = x.transpose(1, 2).contiguous()
    out = fused_snake.anti_aliased_snakebeta_nwc(rows, even, odd, module.downsample.lowpass.filter.reshape(-1),
                                                 freq, inv_mag)
    return out.transpose(1, 2)


@pytest.mark.parametrize("channels,length", [(1, 1), (3, 2), (5, 7), (16, 33), (33, 257), (8, 3000)])
def test_kernel_matches_reference_path(channels, length):
    module = _activation(channels, length)
    x = torch.randn(2, channels, length) * 3
    with torch.no_grad():
        ref = module(x)
    got = _fused(module, x)
    assert got.shape == ref.shape
    # float32 rounding of ~20 terms and of sin: a few ulps of the output scale
    assert float((got - ref).abs().max()) <= 2e-6 * float(ref.abs().max()) + 1e-6


def test_asymmetric_filters_take_the_general_loops():
    """The released filters are mirror-symmetric and run the paired-tap loops; a checkpoint whose filter
    buffers are not must still get its own arithmetic (the general loops), not the paired one."""
    module = _activation(16, 7)
    with torch.no_grad():
        module.upsample.filter.add_(torch.linspace(-0.02, 0.03, 12).view_as(module.upsample.filter))
        module.downsample.lowpass.filter.add_(torch.linspace(0.01, -0.02, 12).view_as(module.downsample.lowpass.filter))
        x = torch.randn(2, 16, 700) * 3
        ref = module(x)
        symmetric = _activation(16, 7)(x)
    got = _fused(module, x)
    assert float((got - ref).abs().max()) <= 2e-6 * float(ref.abs().max()) + 1e-6
    assert float((got - symmetric).abs().max()) > 1e-2  # the perturbation is visible: the check can fail


def test_kernel_accuracy_against_float64_for_large_arguments():
    """|alpha * x| up to ~3e3: the Cody-Waite reduction must keep sin^2 accurate far from zero."""
    module = _activation(4, 0, spread=0.0)
    with torch.no_grad():
        module.act.alpha.copy_(torch.log(torch.tensor([0.5, 3.0, 20.0, 60.0])))
    x = torch.randn(1, 4, 500) * 50
    ref64 = module.double()(x.double())
    module.float()
    got = _fused(module, x).double()
    err = (got - ref64).abs().max().item()
    assert err <= 3e-6 * ref64.abs().max().item()  # torch.sin in float32 is at ~2.3e-6 here


def test_block_edges_do_not_leak():
    """Outputs near each block boundary equal a one-block computation (block size varies with C)."""
    module = _activation(4, 3)
    length = fused_snake.block_for(4) * 2 + 5
    x = torch.randn(1, 4, length)
    with torch.no_grad():
        ref = module(x)
    assert float((_fused(module, x) - ref).abs().max()) <= 1e-5


def _amp_pair(channels: int, kernel: int, seed: int):
    torch.manual_seed(seed)
    block = AMPBlock(channels, kernel, (1, 3, 5)).eval().requires_grad_(False)
    randomize_amp_blocks(block)
    fold_weight_norm(block)
    return block


@pytest.mark.parametrize("channels,kernel", [(8, 3), (16, 7), (12, 11)])
def test_amp_block_channels_last_equals_standard(channels, kernel):
    block = _amp_pair(channels, kernel, kernel)
    x = torch.randn(2, channels, 301)
    with torch.no_grad():
        ref = block(x)
        assert set_channels_last_inference(block) == 1
        assert block.runs_channels_last(x)
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        fast = block.forward_channels_last(x4).squeeze(2)
        again = block.forward_channels_last(x4).squeeze(2)  # scratch buffers reused: same result
    assert float((fast - ref).abs().max()) <= 1e-5 * float(ref.abs().max())
    assert torch.equal(fast, again)


def test_average_blocks_switches_layout_only_when_allowed():
    blocks = build_amp_blocks([8], [3, 5], [[1, 3], [1, 2]]).eval()
    x = torch.randn(1, 8, 120)
    with torch.no_grad():
        # weight norm not folded: the switch refuses (the convs' weights are recomputed by hooks)
        assert set_channels_last_inference(blocks) == 0
        fold_weight_norm(blocks)
        ref = average_blocks(x, blocks, 0, 2)
        assert set_channels_last_inference(blocks) == 2
        fast = average_blocks(x, blocks, 0, 2)
    assert fast.is_contiguous() and fast.shape == ref.shape
    assert float((fast - ref).abs().max()) <= 1e-5 * float(ref.abs().max())
    # with autograd, or in float64, the standard path runs
    y = average_blocks(x.requires_grad_(), blocks, 0, 2)
    assert y.requires_grad
    with torch.no_grad():
        assert not blocks[0].runs_channels_last(x.double())
        set_channels_last_inference(blocks, False)
        assert not blocks[0].runs_channels_last(x)


def test_average_blocks_in_time_pieces_equal_one_pass(monkeypatch):
    """Long stages run in pieces with a halo of the blocks' receptive radius: the same values as one pass, in
    either output layout; a halo one sample short would change the outputs next to the piece edges."""
    import modules.vocoders.amp as amp

    blocks = build_amp_blocks([4], [3, 11], [[1, 3, 5], [1, 3, 5]]).eval()
    fold_weight_norm(blocks)
    set_channels_last_inference(blocks)
    x = torch.randn(2, 4, 20_000)
    with torch.no_grad():
        monkeypatch.setattr(amp, "PIECE_BYTES", 1 << 40)
        whole = average_blocks(x, blocks, 0, 2)
        monkeypatch.setattr(amp, "PIECE_BYTES", 4096 * 4 * 4 * 2)  # pieces of 4096 samples
        pieces = average_blocks(x, blocks, 0, 2)
        pieces_tm = average_blocks(x, blocks, 0, 2, time_major_out=True)
        assert torch.equal(pieces, whole) and torch.equal(pieces_tm, whole)
        short_rest = x[..., :17_000]  # the 616 samples past 16,384 join the fourth piece
        calls = []
        run_pieces = amp._run_pieces
        monkeypatch.setattr(amp, "_run_pieces", lambda blocks_, x4, out, bounds, *a: calls.append(bounds)
                            or run_pieces(blocks_, x4, out, bounds, *a))
        monkeypatch.setattr(amp, "PIECE_BYTES", 1 << 40)
        short_whole = average_blocks(short_rest, blocks, 0, 2)
        monkeypatch.setattr(amp, "PIECE_BYTES", 4096 * 4 * 4 * 2)
        assert torch.equal(average_blocks(short_rest, blocks, 0, 2), short_whole)
        assert calls == [[0, 4096, 8192, 12288, 17_000]]
        monkeypatch.setattr(amp, "_run_pieces", run_pieces)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)  # pieces dealt to two streams of one torch thread each
        try:
            with torch.inference_mode():
                two_streams = average_blocks(x, blocks, 0, 2)
            assert torch.get_num_threads() == 2
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(two_streams, whole)
        assert pieces_tm.stride(1) == 1 and pieces.is_contiguous()
        radius = blocks[1].receptive_radius()
        assert radius == 5 * (1 + 3 + 5) + 5 * 3 + 6 * 6
        monkeypatch.setattr(AMPBlock, "receptive_radius", lambda self: 8)
        assert not torch.equal(average_blocks(x, blocks, 0, 2), whole)


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, output_padding, dilation, batch",
                         [(16, 8, 8, 4, 2, 0, 1, 1), (12, 6, 11, 5, 3, 0, 1, 2), (8, 4, 5, 2, 3, 1, 1, 1),
                          (8, 4, 2, 3, 0, 2, 1, 1), (4, 4, 4, 2, 1, 0, 2, 1), (8, 8, 16, 8, 4, 0, 1, 1)])
def test_transposed_conv_in_windows_equals_conv_transpose1d(monkeypatch, c_in, c_out, kernel, stride, padding,
                                                            output_padding, dilation, batch):
    """The up-sampling convolution runs on fixed-width input windows (zeros past the signal): the values of one
    pass for any length, whether the signal is one window or many, and few distinct window widths."""
    import modules.vocoders.amp as amp

    torch.manual_seed(3)
    up = nn.ConvTranspose1d(c_in, c_out, kernel, stride, padding, output_padding=output_padding, dilation=dilation)
    monkeypatch.setattr(amp, "TRANSPOSED_PIECE_BYTES", 4 * c_out * stride * batch * 64)  # windows of 64 frames
    widths = set()
    real_conv = F.conv_transpose2d

    def recording_conv(x, *args, **kwargs):
        widths.add(x.shape[-1])
        return real_conv(x, *args, **kwargs)

    monkeypatch.setattr(amp.F, "conv_transpose2d", recording_conv)
    for length in (1, 7, 63, 64, 65, 200, 517):
        x = torch.randn(batch, c_in, length)
        with torch.no_grad():
            try:
                expected = up(x)
            except RuntimeError:  # a length this layer does not accept (output size < 1)
                continue
            got = amp.transposed_conv_time_major(up, x)
        assert got.shape == expected.shape and got.stride(1) == 1  # time-major memory
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert len(widths) <= 5  # 16-frame steps up to one 64-frame window, then that window only


def test_cached_coefficients_follow_a_parameter_change_and_wrong_sizes_are_refused():
    # forward_channels_last keeps the kernel's coefficient arrays between calls; an in-place change of alpha
    # or beta (an optimiser step, a state_dict load) must rebuild them
    module = _activation(6, 7)
    x = torch.randn(1, 6, 700)
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        before = module.forward_channels_last(x4).squeeze(2)
        torch.testing.assert_close(before, module(x), rtol=1e-5, atol=1e-5)
        module.act.alpha.add_(0.7)
        module.act.beta.sub_(0.3)
        after = module.forward_channels_last(x4).squeeze(2)
        torch.testing.assert_close(after, module(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)
    coefficients = fused_snake.kernel_coefficients(torch.zeros(7), torch.zeros(7), torch.zeros(12), torch.ones(5),
                                                   torch.ones(5))
    with pytest.raises(ValueError, match="6 channels but 5 frequencies"):
        fused_snake.anti_aliased_snakebeta_nwc_prepared(torch.zeros(1, 10, 6), coefficients)
