"""SpeechSR with the REAL released weights reproduces the official outputs on real speech."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from models.sr.speechsr.model import (PRETRAINED, PRETRAINED_DIR, SpeechSR, interpolated_length, official_model_kwargs,
                                      receptive_radius)
from tests.helpers import assert_waveform_close, fixtures_dir, load_fixture
from utils.config import ConfigError

TAGS = {"24k": 24000, "48k": 48000}


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("hierspeechpp/speechsr_real.pt")


def _model_from_fixture(fx, tag: str) -> SpeechSR:
    cfg = fx["config"][tag]
    model = SpeechSR.from_config({"target_rate": cfg["data"]["sampling_rate"], **official_model_kwargs(cfg["model"])})
    model.load_state_dict(fx["state_dict"][tag], strict=True)
    return model.eval()


@pytest.mark.parametrize("tag", sorted(TAGS))
@pytest.mark.parametrize("optimized", [False, True])
def test_released_weights_match_official_outputs(fixture, tag: str, optimized: bool) -> None:
    model = _model_from_fixture(fixture, tag)
    cases = [("audio", f"wav_{tag}"), ("audio_odd", f"wav_{tag}_odd")]
    if optimized:
        # small chunks so that the clip crosses several window boundaries; the odd length checks the tail
        model.optimize_for_inference(chunk_size=5000)
        cases = cases[1:]
    for inp, out in cases:
        x = fixture["inputs"][inp]
        with torch.no_grad():
            y = model(x)
        expected = fixture["outputs"][out]
        rate = fixture["config"][tag]["data"]["sampling_rate"]
        assert y.shape == expected.shape == (1, 1, interpolated_length(x.shape[-1], rate / 16000))
        assert (y - expected).abs().max().item() <= 1e-4


def test_interpolation_arithmetic(fixture) -> None:
    x = fixture["inputs"]["audio"]
    for name, factor in (("interp_probe_x1.5", 1.5), ("interp_probe_x3", 3.0)):
        y = F.interpolate(x, size=interpolated_length(x.shape[-1], factor), mode="linear")
        assert_waveform_close(y, fixture["outputs"][name], name)


@pytest.mark.parametrize("tag", sorted(TAGS))
def test_keys_and_shapes_equal_the_release(tag: str) -> None:
    keys_path = fixtures_dir() / "hierspeechpp" / "keys_full.json"
    if not keys_path.is_file():
        pytest.skip(f"{keys_path} not available")
    expected = json.loads(keys_path.read_text())[f"speechsr{tag}"]
    model = SpeechSR.from_config({"target_rate": TAGS[tag], **official_model_kwargs(expected["config"])})
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(expected["keys"])
    assert got == expected["keys"]
    assert sum(p.numel() for p in model.parameters()) == expected["total_params"]


@pytest.mark.parametrize("rate", sorted(PRETRAINED))
def test_bundled_checkpoints_load_and_equal_fixture(fixture, rate: int) -> None:
    model = SpeechSR.from_pretrained(rate)
    ref = fixture["state_dict"][f"{rate // 1000}k"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, ref[key]), key
    cfg = json.loads((PRETRAINED_DIR / PRETRAINED[rate][1]).read_text())
    assert cfg["data"]["sampling_rate"] == rate
    assert receptive_radius(model.dec) == 98


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="24000 and 48000"):
        SpeechSR.from_config({"target_rate": 22050})
    model = SpeechSR.from_config({"target_rate": 24000})
    with pytest.raises(ValueError, match=r"\(B, 1, N\)"):
        model(torch.zeros(2, 100))
    with pytest.raises(ConfigError, match="hidden_channels"):
        SpeechSR.from_config({"target_rate": 24000, "hidden_channels": 3})
    with pytest.raises(ConfigError, match="use_spectral_norm"):  # official-only keys: official_model_kwargs drops them
        SpeechSR.from_config({"target_rate": 24000, "use_spectral_norm": False})
    with pytest.raises(FileNotFoundError, match="not found"):
        SpeechSR.from_pretrained(24000, checkpoint="does/not/exist.pth")
