"""wav2vec2's conv front end computed time-major (one GEMM per layer): same numbers, same state_dict keys."""

from __future__ import annotations

import copy
import threading
import time

import pytest
import torch
from torch import nn

from processors.ssl import SSLFeatureExtractor, _TimeMajorConv1d, _TimeMajorFeatureEncoder, build_random_ssl


@pytest.mark.parametrize("in_channels,kernel,stride,bias", [(1, 10, 5, True), (1, 10, 5, False), (6, 3, 2, True),
                                                           (6, 2, 2, False), (3, 4, 1, True)])
def test_time_major_conv_matches_conv1d(in_channels, kernel, stride, bias) -> None:
    torch.manual_seed(0)
    conv = nn.Conv1d(in_channels, 8, kernel, stride=stride, bias=bias)
    fast = _TimeMajorConv1d(conv)
    x = torch.randn(3, in_channels, 1003)
    with torch.no_grad():
        ref = conv(x)
        got = fast(x)
        got_tm = fast.forward_time_major(x.transpose(1, 2).contiguous())
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(got_tm, got.transpose(1, 2))
    assert set(fast.state_dict()) == set(conv.state_dict())
    # with autograd the same numbers and a gradient to the conv's own weight
    y = fast(x)
    y.sum().backward()
    assert torch.allclose(y.detach(), ref, atol=1e-5) and conv.weight.grad is not None
    assert not _TimeMajorConv1d.supports(nn.Conv1d(1, 8, 10, stride=5, padding=2))
    assert not _TimeMajorConv1d.supports(nn.Conv1d(2, 8, 3, dilation=2))
    with pytest.raises(ValueError, match="shorter than the conv kernel"):
        fast.forward_time_major(torch.randn(1, kernel - 1, in_channels))


@pytest.mark.parametrize("stable", [True, False])
def test_extractor_front_end_equals_transformers_and_loads_plain_checkpoints(stable: bool) -> None:
    extractor = build_random_ssl(stable_layer_norm=stable)
    encoder = extractor.model.feature_extractor
    # layer-norm front ends run whole time-major; group-norm ones get only the first conv as a GEMM
    assert isinstance(encoder, _TimeMajorFeatureEncoder) == stable
    assert isinstance(encoder.conv_layers[0].conv, _TimeMajorConv1d)
    # the same weights in transformers' own front end (the official arithmetic)
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2FeatureEncoder

    reference = copy.deepcopy(extractor)
    plain = Wav2Vec2FeatureEncoder(extractor.model.config).eval()
    plain.load_state_dict(encoder.state_dict(), strict=True)
    reference.model.feature_extractor = plain
    assert type(reference.model.feature_extractor.conv_layers[0].conv) is nn.Conv1d
    wav = torch.randn(2, 3200)
    lengths = torch.tensor([3200, 2500])
    got, frames = extractor(wav, lengths)
    want, frames_ref = reference(wav, lengths)
    assert torch.equal(frames, frames_ref)
    assert torch.allclose(got, want, atol=1e-5)
    # and the state_dict round-trips into a fresh extractor
    other = build_random_ssl(stable_layer_norm=stable, seed=1)
    other.model.load_state_dict(copy.deepcopy(extractor.model.state_dict()), strict=True)
    assert torch.allclose(other(wav)[0], extractor(wav)[0], atol=1e-6)


@pytest.mark.parametrize("samples", [6400 + 123, 9600, 12_345])
def test_front_end_in_pieces_equals_one_pass(samples: int, monkeypatch) -> None:
    """Inference computes the front end in pieces of output frames; every piece reads the same windows."""
    extractor = build_random_ssl(stable_layer_norm=True)
    encoder = extractor.model.feature_extractor
    wav = torch.randn(2, samples)
    with torch.no_grad():
        monkeypatch.setattr(_TimeMajorFeatureEncoder, "frames_per_piece", 10**9)
        whole = encoder(wav)
        monkeypatch.setattr(_TimeMajorFeatureEncoder, "frames_per_piece", 3)
        pieces = encoder(wav)
    assert pieces.shape == whole.shape == (2, 16, extractor.frame_lengths(torch.tensor([samples])).item())
    assert torch.allclose(pieces, whole, atol=1e-6)


def test_front_end_threads_hint_applies_inside_and_restores(monkeypatch) -> None:
    """The VC pipeline runs F0 beside the SSL encoder: the front end then uses one torch thread fewer."""
    from processors.ssl import ssl_front_end_beside

    extractor = build_random_ssl(stable_layer_norm=True)
    seen = []
    run_layers = _TimeMajorFeatureEncoder._run_layers
    monkeypatch.setattr(_TimeMajorFeatureEncoder, "_run_layers",
                        lambda self, hidden: seen.append(torch.get_num_threads()) or run_layers(self, hidden))
    wav = torch.randn(1, 4000)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        plain = extractor(wav)[0]
        with ssl_front_end_beside(extractor, beside=True):
            hinted = extractor(wav)[0]
        assert torch.get_num_threads() == 2
        with ssl_front_end_beside(extractor, beside=False):
            extractor(wav)
    finally:
        torch.set_num_threads(threads)
    assert seen == [2, 1, 2]
    assert torch.allclose(hinted, plain, atol=1e-6)
    from processors.ssl import _FRONT_END_THREADS

    assert getattr(_FRONT_END_THREADS, "count", None) is None  # the hint does not outlive its block


def test_front_end_pieces_shared_with_the_side_worker_equal_one_thread(monkeypatch) -> None:
    """Beside F0 the front end's pieces are taken by both threads; each piece is still computed on one
    thread, with the same windows, so the features equal the plain one-thread pass."""
    from processors.ssl import ssl_front_end_beside
    from utils.threads import run_beside, torch_threads

    extractor = build_random_ssl(stable_layer_norm=True)
    monkeypatch.setattr(_TimeMajorFeatureEncoder, "frames_per_piece", 4)
    threads = []
    run_layers = _TimeMajorFeatureEncoder._run_layers
    monkeypatch.setattr(_TimeMajorFeatureEncoder, "_run_layers",
                        lambda self, hidden: threads.append(threading.get_ident()) or time.sleep(0.003)
                        or run_layers(self, hidden))  # pieces slow enough that the helper gets some
    wav = torch.randn(1, 32_000)
    with torch.no_grad(), torch_threads(1):
        alone = extractor(wav)[0]
    threads.clear()
    with torch.no_grad(), torch_threads(2), ssl_front_end_beside(extractor, beside=True):
        _, beside = run_beside(lambda: None, lambda: extractor(wav)[0])
    assert len(set(threads)) == 2  # the side worker took pieces
    assert torch.equal(beside, alone)
