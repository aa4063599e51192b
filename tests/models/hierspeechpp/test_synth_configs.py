"""HierSpeech++ synthesizer configs: they validate, build, and have the advertised sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.tts.hierspeechpp.config import HierSpeechPPConfig, from_official_config
from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
from tests.helpers import fixtures_dir, hierspeech_config_of, load_fixture
from utils.config import ConfigError, load_config, validate
from utils.registry import get

CONFIGS = Path(__file__).resolve().parents[3] / "models" / "tts" / "hierspeechpp" / "configs"


def _params(name: str) -> int:
    cfg = validate(load_config(CONFIGS / f"model_{name}.json5")["model"], HierSpeechPPConfig, "model")
    with torch.device("meta"):
        model = HierSpeechPPSynthesizer.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def test_registered_model():
    assert get("model", "hierspeechpp") is HierSpeechPPSynthesizer


def test_eng_kor_equals_released_model():
    load_fixture("hierspeechpp/synth_vc_tiny.pt")  # skip without fixtures
    ref = json.loads((fixtures_dir() / "hierspeechpp" / "keys_full.json").read_text())["synthesizer"]
    assert validate(load_config(CONFIGS / "model_eng_kor.json5")["model"], HierSpeechPPConfig) == \
        from_official_config(ref["config"])
    assert _params("eng_kor") == ref["total_params"]


def test_fixture_config_builds_the_fixture_model():
    """The fixture's stored official config, through from_official_config, gives its exact parameter count."""
    fx = load_fixture("hierspeechpp/synth_vc_tiny.pt")
    with torch.device("meta"):
        model = HierSpeechPPSynthesizer.from_config(hierspeech_config_of(fx))
    buffers = ("upsample.filter", "downsample.lowpass.filter")
    fixture_params = sum(v.numel() for k, v in fx["state_dict"].items() if not k.endswith(buffers))
    assert sum(p.numel() for p in model.parameters()) == fixture_params


@pytest.mark.parametrize("name, low, high", [("tiny", 10e6, 16e6), ("base16k", 70e6, 80e6), ("large", 190e6, 210e6)])
def test_family_sizes(name, low, high):
    assert low <= _params(name) <= high


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="upsample_rates"):
        validate({"upsample_rates": [5, 4, 4, 2, 2]}, HierSpeechPPConfig, "model")
    with pytest.raises(ConfigError, match="hidden_chanels"):
        validate({"hidden_chanels": 8}, HierSpeechPPConfig, "model")
