"""The shared vocabulary of inference settings (models/base/infer_settings.json5): every family declares the
shared concepts under one name and gets one check for each; a bad value fails as one line naming the key, from a
config, an override, ``with_settings`` or a call's seed; the speaking rate works the same way in every family
that predicts durations (> 1 slower), on real synthesis."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from models.base import checkpoint as ckpt
from models.base.infer_settings import InferSettings, by_role, declaration_problems, vocabulary
from models.base.pipeline import load_pipeline
from models.base.tasks import Audio
from tests.helpers import REPO_ROOT
from tests.serving.live import SPEAKERS, make_tiny_voice
from utils.config import ConfigError, load_config, migrate_renamed_keys, to_dict, validate
from utils.registry import get, names

RATE = by_role("duration_scale").name
# TTS families whose output length is not set by predicted durations (autoregressive decoding stops by itself)
NO_DURATIONS = {"valle"}


def pipelines():
    """Every registered pipeline built from a settings dataclass (``load_pipeline`` builds these)."""
    found = [(n, get("pipeline", n)) for n in names("pipeline")]
    return [(n, cls) for n, cls in found if dataclasses.is_dataclass(getattr(cls, "settings_class", None))]


def make_toy_tts(folder):
    """A random toy_tts checkpoint whose duration predictor says 3 frames per phoneme (so it makes sound)."""
    from models.example.toy_tts.config import ToyTTSExperimentConfig
    from models.example.toy_tts.model import ToyTTS

    cfg = validate(load_config(REPO_ROOT / "models/example/toy_tts/configs/mini.json5",
                               ["data.train_manifest=unused.jsonl"]), ToyTTSExperimentConfig)
    torch.manual_seed(0)
    model = ToyTTS.from_config(cfg.model)
    torch.nn.init.zeros_(model.duration_predictor.proj.weight)
    torch.nn.init.constant_(model.duration_predictor.proj.bias, math.log(1 + 3))
    ckpt.save_checkpoint(folder / "checkpoints", 1, models={"tts": model}, config=to_dict(cfg))
    return folder


def test_every_family_declares_the_shared_settings_as_the_vocabulary_says():
    found = pipelines()
    assert {"vits", "wavegrad2", "toy_tts", "hierspeechpp_tts", "hierspeechpp", "speechsr"} <= {n for n, _ in found}
    for name, cls in found:
        assert issubclass(cls.settings_class, InferSettings), name
        assert declaration_problems(cls.settings_class) == [], name
        fields = {f.name for f in dataclasses.fields(cls.settings_class)}
        assert "pace" not in fields, name  # one name for the speaking rate
        if cls.task == "tts" and name not in NO_DURATIONS:
            assert RATE in fields, f"{name} has no {RATE}: the server's speed cannot reach it"


@pytest.mark.parametrize("key, value, words", [
    (RATE, 0.0, "must be above 0"), (RATE, -1.0, "must be above 0"), ("noise_scale", -0.1, "must be at least 0"),
    ("noise_scale_w", -1.0, "must be at least 0"), ("seed", -5, "must be at least 0"),
    ("output_rate", 44100, "must be one of 16000, 24000, 48000"), ("denoise_ratio", 1.5, "must be at most 1"),
])
def test_a_bad_shared_setting_fails_as_one_line_in_every_family_that_has_it(key, value, words):
    having = [(n, cls) for n, cls in pipelines() if key in {f.name for f in dataclasses.fields(cls.settings_class)}]
    assert having, key
    for name, cls in having:
        with pytest.raises(ConfigError) as err:
            validate({key: value}, cls.settings_class, "infer")
        message = str(err.value)
        assert f"infer.{key}={value!r}: {words}" in message and "\n" not in message, (name, message)
        assert vocabulary()[key].meaning in message  # says what the setting does


def test_the_old_rate_name_points_to_the_new_one():
    wavegrad2 = get("pipeline", "wavegrad2").settings_class
    with pytest.raises(ConfigError, match=rf"unknown config key 'infer.pace' \(renamed to 'infer.{RATE}'\)"):
        validate({"pace": 1.2}, wavegrad2, "infer")
    # a checkpoint saved with the old name loads with the same meaning (a duration multiplier, > 1 slower)
    assert migrate_renamed_keys({"infer": {"pace": 1.2}}) == {"infer": {RATE: 1.2}}


def test_rate_slows_down_and_bad_values_fail_through_every_way_in(tmp_path):
    tiny = load_pipeline(make_tiny_voice(tmp_path / "tiny"))
    toy = load_pipeline(make_toy_tts(tmp_path / "toy"), ["infer.griffin_lim_iters=2"])
    for tts, speaker in ((tiny, "ann"), (toy, None)):
        speakers = None if speaker is None else [speaker]
        normal = tts.synthesize(["Hello there."], speakers=speakers, seed=1)[0].waveform.size
        slow = tts.with_settings({RATE: 2.0}).synthesize(["Hello there."], speakers=speakers, seed=1)[0]
        assert slow.waveform.size > 1.7 * normal  # twice the frames per symbol (rounding aside)
        with pytest.raises(ConfigError, match=rf"infer.{RATE}=-1.0: must be above 0"):
            tts.with_settings({RATE: -1.0})
        with pytest.raises(ConfigError, match="seed=-1: must be at least 0"):
            tts.synthesize(["Hi."], speakers=speakers, seed=-1)
    with pytest.raises(ConfigError, match=rf"infer.{RATE}=-1.0"):
        load_pipeline(tmp_path / "toy", [f"infer.{RATE}=-1"])


def test_messages_name_the_model_not_a_python_class(tmp_path):
    tiny = load_pipeline(make_tiny_voice(tmp_path / "tiny"))
    with pytest.raises(ValueError) as err:
        tiny.synthesize(["Hi."], prompts=[Audio(torch.zeros(16000).numpy(), 16000)])
    assert str(err.value) == (f"model 'tiny' speaks with its own voices and takes no audio prompt: give one of its "
                              f"speakers ({', '.join(SPEAKERS)})")
    for text, words in [("", "the text is empty"), ("  \n", "the text holds only white space"),
                        ("🍕🍕", "remove them or pass --drop_unspeakable")]:
        with pytest.raises(ValueError, match=words):
            tiny.synthesize([text], speakers=["ann"])
    with pytest.raises(ValueError, match="nothing is left to speak once the characters the English voice cannot"):
        tiny.with_settings({"drop_unspeakable": True}).synthesize(["🍕 🍕"], speakers=["ann"])
