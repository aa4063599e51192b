"""``decode_in_windows``: a convolutional decoder run as overlapping time windows on the batch axis (the VITS
Piper-interface export's two-thread form) gives the one-pass waveform, eagerly and as a traced ONNX graph with
dynamic lengths; the halo matters (too small a halo shows seams) and short inputs take one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.base import onnx_backend
from models.base.onnx_backend import decode_in_windows, export_graph
from modules.vocoders.hifigan import HiFiGANGenerator


def tiny_decoder() -> HiFiGANGenerator:
    torch.manual_seed(0)
    return HiFiGANGenerator(8, "1", [3, 7], [[1, 3, 5], [1, 3, 5]], [4, 4], 32, [8, 8], gin_channels=4).eval()


class Windowed(torch.nn.Module):
    def __init__(self, dec: HiFiGANGenerator, halo: int, min_frames: int):
        super().__init__()
        self.dec, self.halo, self.min_frames = dec, halo, min_frames

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return decode_in_windows(lambda x, c: self.dec(x, c), z, g, self.halo, self.dec.hop_length,
                                 self.min_frames)


@pytest.mark.parametrize("windows", [2, 3, 4])
def test_windows_equal_one_pass(windows) -> None:
    torch.set_num_threads(1)
    dec = tiny_decoder()
    halo = dec.receptive_frames()
    with torch.no_grad():
        for batch in (1, 3):
            for frames in (1, 5, 33, 64, 200):  # below, around and far above 2 * halo
                z, g = torch.randn(batch, 8, frames), torch.randn(batch, 4, 1)
                one_pass = dec(z, g)
                ours = decode_in_windows(lambda x, c: dec(x, c), z, g, halo, dec.hop_length, 1, windows)
                assert ours.shape == one_pass.shape == (batch, 1, frames * dec.hop_length)
                torch.testing.assert_close(ours, one_pass, rtol=0, atol=1e-5)
        z, g = torch.randn(1, 8, 200), torch.randn(1, 4, 1)
        seams = decode_in_windows(lambda x, c: dec(x, c), z, g, 2, dec.hop_length, 1, windows)
        assert (seams - dec(z, g)).abs().max() > 1e-4  # a halo short of the receptive field shows


def test_exported_windows_follow_the_length(tmp_path) -> None:
    torch.set_num_threads(1)
    dec = tiny_decoder()
    halo, min_frames = dec.receptive_frames(), 32
    example = (torch.randn(1, 8, 40), torch.randn(1, 4, 1))
    paths = {}
    for name, h in (("exact", halo), ("no_halo", 0)):
        paths[name] = export_graph(Windowed(dec, h, min_frames), example, tmp_path / f"{name}.onnx", ["z", "g"],
                                   ["wav"], {"z": {0: "batch", 2: "frames"}, "g": {0: "batch"}})
    exact = onnx_backend.session(paths["exact"], threads=1)
    no_halo = onnx_backend.session(paths["no_halo"], threads=1)
    generator = torch.Generator().manual_seed(1)
    for batch, frames in ((1, 7), (1, 40), (2, 131)):  # traced once at 40 frames; 7 < min_frames: one pass
        z, g = torch.randn(batch, 8, frames, generator=generator), torch.randn(batch, 4, 1, generator=generator)
        with torch.no_grad():
            one_pass = dec(z, g).numpy()
        feeds = {"z": z.numpy(), "g": g.numpy()}
        (ours,) = exact.run(None, feeds)
        assert ours.shape == one_pass.shape
        np.testing.assert_allclose(ours, one_pass, rtol=0, atol=1e-5)
        (seamed,) = no_halo.run(None, feeds)
        if frames < min_frames:
            np.testing.assert_allclose(seamed, one_pass, rtol=0, atol=1e-5)  # no windows, no seams
        else:
            assert np.abs(seamed - one_pass).max() > 1e-4  # windows really taken inside the graph


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_tail_windows_after_a_whole_head_equal_one_pass(stages) -> None:
    """The VITS runtime graphs run the decoder's head whole and only its tail in windows: ``tail(head(z, g, k),
    k)`` is the forward pass, the tail's windows with ``tail_reach(k)`` give the one-pass waveform, and a halo
    short of that reach shows seams."""
    torch.set_num_threads(1)
    dec = tiny_decoder()
    rate, halo = dec.stage_rate(stages), dec.tail_reach(stages)
    assert rate == [1, 4, 16][stages]  # up-sampling rates 4, 4
    generator = torch.Generator().manual_seed(3)
    z, g = torch.randn(2, 8, 90, generator=generator), torch.randn(2, 4, 1, generator=generator)
    with torch.no_grad():
        one_pass = dec(z, g)
        head = dec.head(z, g, stages)
        assert head.shape == (2, 32 // 2 ** stages, 90 * rate)
        torch.testing.assert_close(dec.tail(head, stages), one_pass, rtol=0, atol=0)
        for windows in (2, 3):
            ours = decode_in_windows(lambda x, _: dec.tail(x, stages), head, None, halo, dec.hop_length // rate,
                                     1, windows)
            torch.testing.assert_close(ours, one_pass, rtol=0, atol=1e-5)
        seams = decode_in_windows(lambda x, _: dec.tail(x, stages), head, None, halo // 3, dec.hop_length // rate,
                                  1, 2)
        assert (seams - one_pass).abs().max() > 1e-4


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_tail_reach_bounds_what_one_input_sample_changes(stages) -> None:
    torch.set_num_threads(1)
    dec = tiny_decoder()
    hop, reach = dec.hop_length // dec.stage_rate(stages), dec.tail_reach(stages)
    channels = 32 // 2 ** stages
    x = torch.randn(1, channels, 4 * reach + 8)
    moved = x.clone()
    at = x.size(-1) // 2
    moved[..., at] += 1.0
    with torch.no_grad():
        changed = (dec.tail(moved, stages) - dec.tail(x, stages)).abs().reshape(-1) > 0
    where = changed.nonzero().reshape(-1)
    assert where.numel() > 0
    assert where.min() >= (at - reach) * hop and where.max() < (at + reach + 1) * hop
