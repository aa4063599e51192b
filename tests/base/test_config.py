"""Config loading, inheritance, overrides and schema validation."""

from dataclasses import dataclass, field
from typing import List, Literal, Optional

import pytest

from utils.config import ConfigError, load_config, save_config, to_dict, validate


@dataclass
class Model:
    hidden_channels: int = 4
    kernel_sizes: List[int] = field(default_factory=lambda: [3, 5])
    dropout: float = 0.1
    activation: Literal["relu", "gelu"] = "relu"


@dataclass
class Train:
    batch_size: int = 2
    grad_clip_norm: Optional[float] = None


@dataclass
class Experiment:
    model_type: str = "x"
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)


def write(path, text):
    path.write_text(text)
    return path


def test_base_config_deep_merge_and_list_replace(tmp_path):
    write(tmp_path / "base.json5", "{model: {hidden_channels: 8, kernel_sizes: [3, 5, 7]}, train: {batch_size: 4}}")
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub" / "child.json5", "{base_config: '../base.json5', model: {kernel_sizes: [9]}}")
    cfg = load_config(child)
    assert cfg == {"model": {"hidden_channels": 8, "kernel_sizes": [9]}, "train": {"batch_size": 4}}


def test_multiple_bases_and_cycle(tmp_path):
    write(tmp_path / "a.json5", "{train: {batch_size: 1}}")
    write(tmp_path / "b.json5", "{train: {batch_size: 2}, model: {dropout: 0.5}}")
    c = write(tmp_path / "c.json5", "{base_config: ['a.json5', 'b.json5']}")
    assert load_config(c) == {"train": {"batch_size": 2}, "model": {"dropout": 0.5}}
    write(tmp_path / "x.json5", "{base_config: 'y.json5'}")
    write(tmp_path / "y.json5", "{base_config: 'x.json5'}")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.json5")


def test_dotted_overrides_parse_values(tmp_path):
    path = write(tmp_path / "c.json5", "{train: {batch_size: 4}}")
    cfg = load_config(path, ["train.batch_size=8", "model.kernel_sizes=[1,2]", "model.activation=gelu",
                             "train.grad_clip_norm=null"])
    exp = validate(cfg, Experiment)
    assert exp.train.batch_size == 8 and exp.model.kernel_sizes == [1, 2]
    assert exp.model.activation == "gelu" and exp.train.grad_clip_norm is None


def test_misspelled_key_names_path_and_suggestion():
    with pytest.raises(ConfigError) as err:
        validate({"model": {"hiden_channels": 3}}, Experiment)
    msg = str(err.value)
    assert "model.hiden_channels" in msg and "model.hidden_channels" in msg


def test_wrong_types_and_literals_rejected():
    with pytest.raises(ConfigError, match="train.batch_size"):
        validate({"train": {"batch_size": "eight"}}, Experiment)
    with pytest.raises(ConfigError, match="model.activation"):
        validate({"model": {"activation": "tanh"}}, Experiment)
    with pytest.raises(ConfigError, match=r"model.kernel_sizes\[1\]"):
        validate({"model": {"kernel_sizes": [3, 2.5]}}, Experiment)
    # ints are accepted where floats are expected, bools are not ints
    assert validate({"model": {"dropout": 0}}, Experiment).model.dropout == 0.0
    with pytest.raises(ConfigError):
        validate({"train": {"batch_size": True}}, Experiment)


def test_missing_file_and_bad_json5(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json5")
    bad = write(tmp_path / "bad.json5", "{model: ")
    with pytest.raises(ConfigError, match="bad.json5"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(write(tmp_path / "ok.json5", "{}"), ["batch_size"])


def test_save_roundtrip(tmp_path):
    exp = validate({"model": {"hidden_channels": 7}}, Experiment)
    save_config(exp, tmp_path / "config.json")
    again = validate(load_config(tmp_path / "config.json"), Experiment)
    assert to_dict(again) == to_dict(exp)
