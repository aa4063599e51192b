"""modules/commons.py: masks, padding, slicing and alignment paths."""

import pytest
import torch

from modules.commons import (
    fused_add_tanh_sigmoid_multiply,
    generate_path,
    get_padding,
    rand_slice_segments,
    sequence_mask,
    slice_segments,
)


def test_sequence_mask_and_padding():
    mask = sequence_mask(torch.tensor([3, 1]), 4)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert sequence_mask(torch.tensor([2, 5])).shape == (2, 5)
    assert get_padding(5) == 2 and get_padding(3, 4) == 4


def test_slice_segments_values_and_bounds():
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 3, 10)
    seg = slice_segments(x, torch.tensor([0, 6]), 4)
    assert torch.equal(seg[0], x[0, :, 0:4]) and torch.equal(seg[1], x[1, :, 6:10])
    with pytest.raises(ValueError):
        slice_segments(x, torch.tensor([0, 7]), 4)


def test_rand_slice_segments_replays_injected_uniforms():
    x = torch.randn(2, 4, 72)
    lengths = torch.tensor([72, 64])
    seg, starts = rand_slice_segments(x, lengths, 60, uniform=torch.tensor([0.5, 0.99]))
    # floor(0.5 * 13) = 6, floor(0.99 * 5) = 4
    assert starts.tolist() == [6, 4]
    assert torch.equal(seg[0], x[0, :, 6:66])
    # Items shorter than the window start at 0.
    _, starts = rand_slice_segments(x, torch.tensor([72, 40]), 60, uniform=torch.tensor([0.0, 0.7]))
    assert starts.tolist() == [0, 0]
    seg, starts = rand_slice_segments(x, lengths, 60)
    assert seg.shape == (2, 4, 60) and bool((starts + 60 <= lengths).all())


def test_generate_path_is_monotonic_and_covers_durations():
    durations = torch.tensor([[[2.0, 0.0, 3.0]], [[1.0, 1.0, 0.0]]])
    t_y = 5
    x_mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]).unsqueeze(1)
    y_mask = sequence_mask(torch.tensor([5, 2]), t_y).float().unsqueeze(1)
    mask = y_mask.unsqueeze(-1) * x_mask.unsqueeze(2)
    path = generate_path(durations, mask)
    assert path.shape == (2, 1, 5, 3)
    expected0 = [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]]
    assert path[0, 0].tolist() == expected0
    assert path[1, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert torch.equal(path.sum(2).squeeze(1), durations.squeeze(1) * x_mask.squeeze(1))


def test_fused_gate():
    a, b = torch.randn(2, 6, 5), torch.randn(2, 6, 5)
    out = fused_add_tanh_sigmoid_multiply(a, b, 3)
    s = a + b
    assert torch.allclose(out, torch.tanh(s[:, :3]) * torch.sigmoid(s[:, 3:]))
