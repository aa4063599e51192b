"""The one way a model is built from its config.

Every registered model class (``@register("model", NAME)``) declares ``config_class``, the dataclass of its
``model`` config section (defaults live there, once). Its constructor takes one explicit, typed keyword argument
per field of that dataclass and nothing else: no ``**kwargs``, no whole config object, no experiment config.
:func:`build_model` validates a section (a dict from a json5 file or a saved checkpoint: unknown keys fail naming
the closest one, missing keys take the defaults) or takes an instance of ``config_class``, and calls the
constructor with every field as a keyword argument::

    model = build_model(VITS, cfg.model)                     # a validated VITSConfig
    model = build_model(TextToVec, {"hidden_channels": 16})  # a partial section: the rest are the defaults
    model = VITS.from_config(cfg.model)                       # the same, via :class:`BuiltFromConfig`

A model keeps the validated config as ``model.config`` (:func:`config_of_arguments`), for readers that need its
sizes (checkpoint writers, pipelines checking that two models fit together).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Type, TypeVar

M = TypeVar("M")


def build_model(model_class: Type[M], config: Any) -> M:
    """``model_class(**fields of its validated config)``; ``config`` is a ``model_class.config_class`` instance or
    a mapping validated into one."""
    from utils.config import validate

    config_class = getattr(model_class, "config_class", None)
    if config_class is None:
        raise TypeError(f"{model_class.__name__} declares no config_class (the dataclass of its model section)")
    if isinstance(config, Mapping):
        config = validate(dict(config), config_class, "model")
    elif not isinstance(config, config_class):  # a subclass (a model section with more keys) is fine
        raise TypeError(f"{model_class.__name__} is built from a {config_class.__name__} or a mapping, "
                        f"got {type(config).__name__}")
    return model_class(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config_class) if f.init})


def config_of_arguments(config_class: Type[M], arguments: Mapping[str, Any]) -> M:
    """The config a constructor was called with, from its arguments (``locals()`` at the top of ``__init__``);
    building it runs the dataclass's own checks."""
    return config_class(**{f.name: arguments[f.name] for f in dataclasses.fields(config_class) if f.init})


class BuiltFromConfig:
    """Mixin of a model class: ``config_class`` and ``from_config`` (= :func:`build_model`)."""

    config_class: ClassVar[type]

    @classmethod
    def from_config(cls: Type[M], config: Any) -> M:
        return build_model(cls, config)
