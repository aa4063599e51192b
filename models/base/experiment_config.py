"""One way to declare a family's experiment schema: ``model_type`` plus one typed section a name.

Every family's config module ends with the same kind of dataclass (``model_type``, ``model``, ``data``,
``train`` and sometimes ``discriminator`` / ``infer`` / ``decoding``), each section defaulting to its own
dataclass's defaults. :func:`experiment_config` writes those fields so a family states only what differs::

    @experiment_config("vits", model=VITSConfig, data=VITSDataConfig, train=VITSTrainConfig)
    class VITSExperimentConfig:
        def __post_init__(self) -> None: ...   # cross-section checks stay in the class

The result is a plain dataclass (fields in the order given: ``to_dict`` and saved ``config.json`` keep it),
so ``utils.config.validate`` reads it like any other schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")


def experiment_config(model_type: str, **sections: type) -> Callable[[type[T]], type[T]]:
    """Class decorator: fields ``model_type`` (default ``model_type``) then ``sections`` (name -> dataclass)."""

    def build(cls: type[T]) -> type[T]:
        own = dict(cls.__dict__.get("__annotations__", {}))
        clash = sorted(set(own) & ({"model_type"} | set(sections)))
        if clash:
            raise TypeError(f"{cls.__name__} declares {clash} itself; experiment_config writes them")
        cls.__annotations__ = {"model_type": str, **sections, **own}
        cls.model_type = model_type
        for name, section in sections.items():
            setattr(cls, name, field(default_factory=section))
        return dataclass(cls)

    return build


def training_audio_rate(cfg: object) -> int | None:
    """The sample rate a family's training reads audio at, from its validated experiment config (defaults
    included): ``data.sample_rate``, else ``model.sample_rate`` (WaveGrad 2), else ``model.target_rate``
    (SpeechSR, which reads the high-rate audio and makes its own 16 kHz input); None for families that train
    on features alone (TTV, VALL-E, Glow-WaveGAN stage 2)."""
    for section, name in (("data", "sample_rate"), ("model", "sample_rate"), ("model", "target_rate")):
        value = getattr(getattr(cfg, section, None), name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None

