"""The feature-extractor interface (registry kind ``feature``) and settings parsing.

A feature extractor turns one utterance's waveform into one tensor stored as ``<features_dir>/<name>/<id>.pt``
(:mod:`processors.features.store`).  To add one, subclass :class:`FeatureExtractor`, give it a ``Settings``
frozen dataclass (typed fields with defaults; ``sample_rate`` is required: the driver loads the audio at that
rate), implement ``extract`` (or ``extract_batch``) and decorate the class with
``register("feature", "<name>")`` from :mod:`utils.registry` in any file under ``processors/`` or ``models/``::

    @dataclass(frozen=True)
    class EnergySettings:
        sample_rate: int = 16000
        hop_length: int = 320

    class EnergyFeature(FeatureExtractor):          # registered as "energy"
        Settings = EnergySettings

        def extract(self, wav: np.ndarray) -> torch.Tensor:     # (N,) float32 at sample_rate -> (T,)
            ...

Class attributes say how the driver runs and stores it:

* ``storage_dtype`` — dtype written to disk (``float32`` by default).  Integer features (codec codes, token
  ids) subclass :class:`CodeExtractor` (``int16``); the store refuses float output or values that do not fit.
* ``batched`` — ``False``: :meth:`FeatureExtractor.extract` runs per item in worker processes (cheap signal
  processing; the extractor is pickled to each worker).  ``True``: :meth:`FeatureExtractor.extract_batch`
  runs in the calling process on ``device`` (neural models: one copy in memory, batches sorted by length).

Settings are a frozen dataclass with typed fields; :meth:`FeatureExtractor.from_options` builds one from
``{"key": value}`` where values may be strings (``--set f0.method=dio`` on the CLI) and unknown keys fail with
a one-line error naming the feature and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

__all__ = ["FeatureExtractor", "CodeExtractor", "FeatureError", "parse_settings", "build_extractor"]


class FeatureError(ValueError):
    """A feature name, setting or stored feature file is wrong; the message names it."""


class FeatureExtractor:
    """Base class of every registered feature extractor.

    Args:
        settings: an instance of ``cls.Settings`` (``None``: all defaults).
        device: where a batched extractor runs (``"cpu"``, ``"cuda:0"``); per-item extractors ignore it.
    """

    Settings: ClassVar[type]
    storage_dtype: ClassVar[torch.dtype] = torch.float32
    batched: ClassVar[bool] = False

    def __init__(self, settings: Any = None, device: str = "cpu") -> None:
        settings = self.Settings() if settings is None else settings
        if not isinstance(settings, self.Settings):
            raise FeatureError(f"{self.name}: settings must be {self.Settings.__name__}, got {type(settings).__name__}")
        self.settings = settings
        self.device = device

    @property
    def name(self) -> str:
        """The registered name; it also names the feature's folder."""
        return _registered_name(type(self))

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) the audio is loaded at for this feature."""
        return int(self.settings.sample_rate)

    def extract(self, wav: np.ndarray) -> torch.Tensor:
        """``(N,)`` float32 audio at :attr:`sample_rate` -> the feature tensor (shape documented by the class)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither extract nor extract_batch")

    def extract_batch(self, wavs: Sequence[np.ndarray]) -> List[torch.Tensor]:
        """Several items at once (batched extractors override this); one tensor per input, in order."""
        return [self.extract(wav) for wav in wavs]

    @classmethod
    def frame_shift_of(cls, description: Mapping[str, Any]) -> Optional[float]:
        """Seconds between consecutive steps of the last (time) axis of features that :meth:`describe` gave
        ``description``; None when they are not time-indexed (or the description does not say).  Default: one
        step per ``hop_length`` samples at ``sample_rate``; features with another step override it."""
        settings = description.get("settings") or {}
        hop, rate = settings.get("hop_length"), settings.get("sample_rate")
        return float(hop) / float(rate) if hop and rate else None

    @property
    def frame_shift(self) -> Optional[float]:
        """:meth:`frame_shift_of` this extractor's own description (shards record it with each array)."""
        return self.frame_shift_of(self.describe())

    def describe(self) -> Dict[str, Any]:
        """What identifies the stored files: name, settings and dtype (written to ``<name>/feature.json``)."""
        return {
            "name": self.name,
            "settings": dataclasses.asdict(self.settings),
            "dtype": str(self.storage_dtype).replace("torch.", ""),
        }

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, device: str = "cpu", **kwargs: Any) -> "FeatureExtractor":
        """Build from a mapping of settings (strings are converted to the field's type)."""
        return cls(parse_settings(cls.Settings, options or {}, _registered_name(cls)), device=device, **kwargs)


def _registered_name(cls: type) -> str:
    key = cls.__dict__.get("_registry_key")  # not inherited: an unregistered subclass is not its parent
    return key[1] if key else cls.__name__


class CodeExtractor(FeatureExtractor):
    """Integer codes, e.g. a neural codec's ``(n_codebooks, T)`` token ids, stored compactly as ``int16``.

    Subclasses return integer tensors (any integer dtype) from :meth:`extract_batch`; the store checks every
    value fits ``storage_dtype`` (set ``storage_dtype = torch.int32`` for vocabularies above 32767) and writes
    that dtype.  Readers get the stored dtype back and call ``.long()`` before an embedding lookup.  Codecs are
    neural models, so the default is ``batched = True`` (main process, on ``device``).
    """

    storage_dtype: ClassVar[torch.dtype] = torch.int16
    batched: ClassVar[bool] = True


_SCALARS = (bool, int, float, str)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Convert a CLI string (or already typed value) to ``annotation`` (bool/int/float/str or Optional of one)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) is typing.Union and len(args) == 1
    target = args[0] if optional else annotation
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
        return None
    if target not in _SCALARS:
        return value
    if isinstance(value, str) and target is not str:
        text = value.strip().lower()
        if target is bool:
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise FeatureError(f"{where}: expected true/false, got {value!r}")
        try:
            return target(value)
        except ValueError:
            raise FeatureError(f"{where}: expected {target.__name__}, got {value!r}") from None
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise FeatureError(f"{where}: expected {target.__name__}, got {value!r}")
    return value


def parse_settings(settings_cls: type, options: Mapping[str, Any], feature: str) -> Any:
    """``settings_cls(**options)`` with type conversion; an unknown key fails naming the feature and key."""
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    hints = typing.get_type_hints(settings_cls)
    values = {}
    for key, value in options.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise FeatureError(f"feature {feature!r} has no setting {key!r}{hint} (settings: {', '.join(fields)})")
        values[key] = _convert(value, hints[key], f"feature {feature!r} setting {key!r}")
    return settings_cls(**values)


def build_extractor(name: str, options: Mapping[str, Any] | None = None, device: str = "cpu", **kwargs: Any) -> FeatureExtractor:
    """The registered extractor ``name`` built with ``options`` (see :meth:`FeatureExtractor.from_options`)."""
    from utils.registry import RegistryError, get

    try:
        cls = get("feature", name)
    except RegistryError as err:
        raise FeatureError(str(err)) from None
    return cls.from_options(options, device=device, **kwargs)
