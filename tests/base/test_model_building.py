"""The one model-building rule (models/base/building.py): every registered model declares its config dataclass,
its constructor takes one explicit typed keyword argument per field (no ``**kwargs``), and build_model builds it
from a validated section."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from models.base.building import build_model
from utils.config import ConfigError
from utils.registry import get, names


def _registered_models():
    return [(name, get("model", name)) for name in names("model")]


@pytest.mark.parametrize("name,model_class", _registered_models())
def test_every_model_takes_its_config_fields_as_explicit_arguments(name, model_class) -> None:
    params = inspect.signature(model_class.__init__).parameters
    var = [p.name for p in params.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert not var, f"model {name!r}: constructor takes *{'/**'.join(var)} (give explicit typed arguments)"
    config_class = getattr(model_class, "config_class", None)
    assert config_class is not None and dataclasses.is_dataclass(config_class), \
        f"model {name!r} declares no config dataclass (config_class)"
    fields = {f.name for f in dataclasses.fields(config_class) if f.init}
    args = {p for p in params if p != "self"}
    assert args == fields, f"model {name!r}: constructor arguments {sorted(args ^ fields)} differ from its config"
    unannotated = [p.name for p in params.values() if p.name != "self" and p.annotation is inspect.Parameter.empty]
    assert not unannotated, f"model {name!r}: untyped constructor arguments {unannotated}"
    # keyword-only, no defaults: the defaults live once, in the config dataclass
    loose = [p.name for p in params.values() if p.name != "self" and
             (p.kind is not p.KEYWORD_ONLY or p.default is not inspect.Parameter.empty)]
    assert not loose, f"model {name!r}: arguments {loose} are positional or carry a default of their own"


def test_build_model_validates_the_section() -> None:
    model_class = get("model", "toy_autoencoder")
    model = build_model(model_class, {"channels": 4})
    assert model.config.channels == 4  # the rest from the dataclass defaults
    with pytest.raises(ConfigError, match="channels"):
        build_model(model_class, {"chanels": 4})  # unknown keys fail naming the closest
    with pytest.raises(TypeError, match="ToyAutoencoderConfig or a mapping"):
        build_model(model_class, ["channels"])
