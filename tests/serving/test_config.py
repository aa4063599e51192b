"""serve.json5 is validated like every config (unknown keys fail, paths relative to the file), and
``echelon-serve`` turns a bad config or a missing checkpoint into one line and exit status 2."""

from __future__ import annotations

import pytest

from bins import serve as serve_cli
from serving.config import read_serve_config, single_model_config
from utils.config import ConfigError


def test_config_paths_limits_and_unknown_keys(tmp_path):
    (tmp_path / "serve.json5").write_text('{models: {joe: {pipeline: "exp/joe"}, sr: {model_type: "speechsr"}}, '
                                          'limits: {queue_size: 3}}')
    cfg = read_serve_config(tmp_path / "serve.json5", ["limits.workers=2"])
    assert cfg.models["joe"].pipeline == str(tmp_path / "exp/joe") and cfg.models["sr"].model_type == "speechsr"
    assert (cfg.limits.queue_size, cfg.limits.workers, cfg.limits.max_text_chars) == (3, 2, 4096)  # OpenAI's limit
    (tmp_path / "typo.json5").write_text('{models: {joe: {pipeline: "x"}}, limits: {queue_sise: 3}}')
    with pytest.raises(ConfigError, match="did you mean 'limits.queue_size'"):
        read_serve_config(tmp_path / "typo.json5")
    # both: an official .pth and the model it is (as echelon-infer --pipeline G.pth --model_type NAME)
    (tmp_path / "both.json5").write_text('{models: {hsp: {pipeline: "G.pth", model_type: "hierspeechpp"}}}')
    assert read_serve_config(tmp_path / "both.json5").models["hsp"].model_type == "hierspeechpp"
    (tmp_path / "neither.json5").write_text('{models: {joe: {voices: {}}}}')
    with pytest.raises(ConfigError, match="models.joe needs 'pipeline' .* or 'model_type'"):
        read_serve_config(tmp_path / "neither.json5")
    (tmp_path / "voice").mkdir()
    assert list(single_model_config(str(tmp_path / "voice")).models) == ["voice"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert serve_cli.main(["--ckpt_dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("echelon-serve: ") and "missing" in err and "\n" not in err
    (tmp_path / "bad.json5").write_text('{models: {}}')
    assert serve_cli.main(["--config", str(tmp_path / "bad.json5")]) == 2
    assert "names no model" in capsys.readouterr().err


def test_overrides_of_a_single_model_are_checked(tmp_path):
    """``echelon-serve --ckpt_dir DIR --set ...``: the overrides go through the same checks as a serve.json5."""
    assert single_model_config(str(tmp_path / "voice"), ["limits.workers=2"]).limits.workers == 2
    assert single_model_config(str(tmp_path / "voice")).limits.workers == 0  # default: the CPU cores
    with pytest.raises(ConfigError, match="limits.workers and models.NAME.workers must be >= 0"):
        single_model_config(str(tmp_path / "voice"), ["limits.workers=-1"])


def test_model_lookup_names_what_is_served():
    """The registry's answers without a name, with an unknown name, and for another task's model."""
    from serving.errors import ApiError
    from serving.models import ModelRegistry, ServedModel

    registry = ModelRegistry({})
    registry.models = {"joe": ServedModel("joe", None, "tts"), "amy": ServedModel("amy", None, "tts"),
                       "sr": ServedModel("sr", None, "sr")}
    assert registry.get(None, "sr").name == "sr"  # the only model of its task
    cases = [((None, "vc"), 404, "no vc model is served here"), ((None, "tts"), 422, "give 'model': one of joe, amy"),
             (("bob", "tts"), 404, "model 'bob' not found; served tts models: joe, amy"),
             (("sr", "tts"), 422, "model 'sr' is a sr model, not tts")]
    for args, status, message in cases:
        with pytest.raises(ApiError) as err:
            registry.get(*args)
        assert err.value.status == status and err.value.message.startswith(message)


def test_registry_warms_each_model_up_and_survives_a_failed_warm_up(tmp_path, caplog, monkeypatch):
    """``warm_up`` (on by default) runs one small request per model at start-up; a model whose warm-up raises is
    still served, and the log says why."""
    import logging

    import serving.models as served
    from serving.config import ModelEntry
    from tests.serving.live import make_tiny_voice

    make_tiny_voice(tmp_path / "tiny")
    entries = {"tiny": ModelEntry(pipeline=str(tmp_path / "tiny")), "sr": ModelEntry(model_type="speechsr")}
    calls = []
    real = served.warm_up
    monkeypatch.setattr(served, "warm_up", lambda model: calls.append(model.name) or real(model))
    with caplog.at_level(logging.INFO, logger="echelon.serve"):
        registry = served.ModelRegistry(entries, warm=True)
    assert calls == ["tiny", "sr"] and sorted(registry.models) == ["sr", "tiny"]
    assert sum("warmed up model" in r.getMessage() for r in caplog.records) == 2
    from serving.config import ServeConfig
    assert ServeConfig().warm_up is True

    def broken(model):
        raise RuntimeError("no\nvoice")

    monkeypatch.setattr(served, "warm_up", broken)
    caplog.clear()
    registry = served.ModelRegistry({"tiny": entries["tiny"]}, warm=True)
    assert list(registry.models) == ["tiny"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "model 'tiny': warm-up failed (RuntimeError: no voice); its first request pays the one-off costs"]


def test_voice_maps_name_speakers_of_a_multi_speaker_model(tmp_path):
    """``models.NAME.voices`` (OpenAI's voice names -> speakers) is checked against the loaded model at start-up."""
    from models.base.pipeline import load_pipeline
    from serving.models import check_voice_map
    from tests.serving.live import make_tiny_voice

    tiny = load_pipeline(make_tiny_voice(tmp_path / "tiny"))
    assert check_voice_map("tiny", tiny, {"alloy": "bob", "echo": "ann"}) == {"alloy": "bob", "echo": "ann"}
    with pytest.raises(ConfigError, match=r"models.tiny.voices.onyx: 'zed' is not a speaker of model 'tiny' "
                                          r"\(ann, bob, cid\)"):
        check_voice_map("tiny", tiny, {"onyx": "zed"})
    (tmp_path / "serve.json5").write_text('{models: {tiny: {pipeline: "tiny", voices: {alloy: 3}}}}')
    with pytest.raises(ConfigError, match="voices.alloy"):
        read_serve_config(tmp_path / "serve.json5")  # speakers are names: a number is refused when read
