"""Streaming synthesis (models/base/streaming.py): a stream's chunks joined equal the one-shot output for the
same seed, streams advanced in turns draw what each draws alone, and per-call settings leave the pipeline as
it was. A tiny random VITS (official file format) is the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.base.pipeline import load_pipeline
from models.base.streaming import PrivateRandom, windowed_decode
from models.tts.vits.checkpoint import save_official_checkpoint
from models.tts.vits.config import from_official_config
from models.tts.vits.model import VITS
from tests.models.vits.test_vits_inference import OFFICIAL
from utils.config import ConfigError

TEXT = ("Hello there. The quick brown fox jumps over the lazy dog, and then it runs far away into the dark "
        "forest where nobody finds it again. Short one!")


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vits")
    torch.manual_seed(0)
    save_official_checkpoint(VITS.from_config(from_official_config(OFFICIAL)), root / "G_1.pth", iteration=1)
    (root / "config.json").write_text(json.dumps(OFFICIAL))
    return load_pipeline({"pipeline": "vits", "components": {"model": str(root / "G_1.pth")},
                          "infer": {"max_sentence_chars": 60, "stream_window_frames": 32}})


def test_stream_joined_equals_one_shot(tts):
    whole = tts.synthesize([TEXT], seed=7)[0].waveform
    chunks = [c.waveform for c in tts.synthesize_stream(TEXT, seed=7)]
    per_sentence = [c.waveform for c in tts.with_settings({"stream_window_frames": 0}).synthesize_stream(TEXT, seed=7)]
    assert len(chunks) > len(per_sentence) >= 3  # several sentences (and pauses), the long one in several windows
    joined = np.concatenate(chunks)
    assert joined.shape == whole.shape
    np.testing.assert_allclose(joined, whole, atol=1e-4)  # contexts (flow 32, decoder 16) >= receptive fields
    np.testing.assert_array_equal(np.concatenate(per_sentence), whole)  # whole sentences: the very same computation
    other = tts.synthesize([TEXT], seed=8)[0].waveform
    n = min(other.size, whole.size)
    assert np.abs(other[:n] - whole[:n]).max() > 1e-3  # the seed matters (the test could tell a wrong one)


def test_interleaved_streams_draw_what_each_draws_alone(tts):
    alone = [np.concatenate([c.waveform for c in tts.synthesize_stream(TEXT, seed=s)]) for s in (1, 2)]
    streams = [tts.synthesize_stream(TEXT, seed=s) for s in (1, 2)]
    parts = [[], []]
    torch.manual_seed(99)
    caller_state = torch.get_rng_state()
    live = [0, 1]
    while live:
        for k in list(live):
            chunk = next(streams[k], None)
            if chunk is None:
                live.remove(k)
            else:
                parts[k].append(chunk.waveform)
    assert torch.equal(torch.get_rng_state(), caller_state)  # the caller's generator was not touched
    for k in (0, 1):
        np.testing.assert_array_equal(np.concatenate(parts[k]), alone[k])


def test_private_rng_and_windows_on_plain_tensors():
    rng, draws = PrivateRandom(3), []
    for _ in range(3):
        with rng.active():
            draws.append(torch.rand(2))
    torch.manual_seed(3)
    np.testing.assert_array_equal(torch.cat(draws).numpy(), torch.rand(6).numpy())
    conv = torch.nn.Conv1d(1, 4, 5, padding=2)
    up = lambda z: conv(z).transpose(1, 2).reshape(1, 1, -1)  # noqa: E731 - hop 4, receptive field 2 frames
    z = torch.randn(1, 1, 50)
    with torch.no_grad():
        full = up(z)
        pieces = torch.cat(list(windowed_decode(up, z, hop=4, window=7, context=2)), dim=-1)
        short = torch.cat(list(windowed_decode(up, z, hop=4, window=7, context=1)), dim=-1)
    assert torch.allclose(pieces, full, atol=1e-6)
    assert not torch.allclose(short, full, atol=1e-6)  # too little context shows at the window edges


def test_with_settings_copies_and_validates(tts):
    fast = tts.with_settings({"length_scale": 0.5})
    assert fast.settings.length_scale == 0.5 and tts.settings.length_scale == 1.0
    assert fast.synth is tts.synth  # the loaded model is shared
    assert fast.synthesize(["Hello there."], seed=1)[0].waveform.size < \
        tts.synthesize(["Hello there."], seed=1)[0].waveform.size
    with pytest.raises(ConfigError, match="noise_scale"):
        tts.with_settings({"noise_scal": 0.1})
