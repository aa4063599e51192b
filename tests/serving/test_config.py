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
    assert (cfg.limits.queue_size, cfg.limits.workers, cfg.limits.max_text_chars) == (3, 2, 5000)
    (tmp_path / "typo.json5").write_text('{models: {joe: {pipeline: "x"}}, limits: {queue_sise: 3}}')
    with pytest.raises(ConfigError, match="did you mean 'limits.queue_size'"):
        read_serve_config(tmp_path / "typo.json5")
    (tmp_path / "both.json5").write_text('{models: {joe: {pipeline: "x", model_type: "vits"}}}')
    with pytest.raises(ConfigError, match="exactly one of"):
        read_serve_config(tmp_path / "both.json5")
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
    with pytest.raises(ConfigError, match="limits.workers must be >= 1"):
        single_model_config(str(tmp_path / "voice"), ["limits.workers=0"])
