"""models/base/experiment_config: the decorator every family's experiment schema is declared with."""

from __future__ import annotations

import dataclasses

import pytest

from models.base.experiment_config import experiment_config
from models.base.trainer import TrainConfig
from utils.config import ConfigError, to_dict, validate
from utils.registry import get, names


@dataclasses.dataclass
class _Model:
    width: int = 4


def test_fields_defaults_and_validation_follow_the_sections():
    @experiment_config("demo", model=_Model, train=TrainConfig)
    class Demo:
        """A demo experiment."""

        def __post_init__(self) -> None:
            if self.model.width < 1:
                raise ValueError("model.width must be >= 1")

    assert [f.name for f in dataclasses.fields(Demo)] == ["model_type", "model", "train"]
    assert Demo.__doc__ == "A demo experiment." and Demo().model_type == "demo"
    assert Demo().model is not Demo().model  # one section object per instance
    cfg = validate({"model_type": "demo", "model": {"width": 8}}, Demo)
    assert cfg.model.width == 8 and list(to_dict(cfg)) == ["model_type", "model", "train"]
    with pytest.raises(ConfigError, match="model.width must be >= 1"):
        validate({"model": {"width": 0}}, Demo)
    with pytest.raises(ConfigError, match="unknown config key 'model.height'"):
        validate({"model": {"height": 8}}, Demo)


def test_a_class_declaring_a_section_itself_is_refused():
    with pytest.raises(TypeError, match=r"Clash declares \['model'\] itself"):
        @experiment_config("clash", model=_Model)
        class Clash:
            model: _Model = dataclasses.field(default_factory=_Model)


@pytest.mark.parametrize("name", names("trainer"))
def test_every_trainer_schema_names_its_own_model_type(name):
    schema = get("trainer", name).config_class
    assert dataclasses.fields(schema)[0].name == "model_type" and schema().model_type == name
    assert isinstance(schema().train, TrainConfig)
