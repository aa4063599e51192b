"""One vocabulary of inference settings: each shared concept has one name, one meaning and one check.

The vocabulary is ``infer_settings.json5`` beside this file (data, so that no family's or setting's name is
spelled out in code here): the speaking rate, the noise scales (temperatures), the seed, output rates, the
sentence settings... A family's settings dataclass inherits :class:`InferSettings` and declares the shared
settings it has under their vocabulary names, with its own defaults::

    @dataclass
    class MySettings(SentenceSettings):      # SentenceSettings is an InferSettings
        length_scale: float = 1.0           # checked here: must be > 0 (> 1 speaks slower)
        my_own_knob: int = 3                # not in the vocabulary: the family checks it itself

Building such a dataclass (from a config, ``--set``, a server request through ``with_settings``) checks every
vocabulary setting it has (:func:`check_settings`), so ``length_scale=-1`` fails as one line wherever it comes
from. The server takes its per-request fields, their labels and the web demo's controls from here
(:func:`request_settings`, :class:`Setting`), and finds the setting its ``speed`` maps to by role
(:func:`by_role`), whatever the family.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from utils.config import ConfigError, load_config

VOCABULARY_FILE = Path(__file__).with_name("infer_settings.json5")
TYPES = {"float": float, "int": int, "bool": bool, "str": str}  # a family's field type
KINDS = {"float": numbers.Real, "int": numbers.Integral, "bool": bool, "str": str}  # values accepted for it


@dataclass(frozen=True)
class Setting:
    """One vocabulary entry (see the keys described at the top of ``infer_settings.json5``)."""

    name: str
    type: str
    meaning: str
    label: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: Optional[float] = None
    choices: Tuple[Any, ...] = ()
    request: bool = False
    request_maximum: Optional[float] = None
    control: Tuple[float, ...] = ()  # (minimum, maximum, step) of the demo's slider
    needs: str = ""
    unavailable: str = ""
    role: str = ""

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` is not a valid value of this setting (None: it is). ``None`` itself is left to the
        family's type (an Optional field means "the default")."""
        if value is None:
            return None
        if isinstance(value, bool) != (self.type == "bool") or not isinstance(value, KINDS[self.type]):
            return f"must be a {self.type}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(str(c) for c in self.choices)}"
        if self.exclusive_minimum is not None and not value > self.exclusive_minimum:
            return f"must be above {self.exclusive_minimum:g}"
        if self.minimum is not None and not value >= self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and not value <= self.maximum:
            return f"must be at most {self.maximum:g}"
        return None

    def check(self, value: Any, prefix: str = "infer.") -> None:
        """ConfigError ``infer.NAME=VALUE: must be ... (meaning)`` when ``value`` is invalid."""
        problem = self.problem(value)
        if problem:
            raise ConfigError(f"{prefix}{self.name}={value!r}: {problem} ({self.meaning})")

    def check_request(self, value: Any) -> None:
        """:meth:`check`, and the most one request may ask for (``request_maximum``)."""
        self.check(value, "")
        if self.request_maximum is not None and value is not None and value > self.request_maximum:
            raise ConfigError(f"{self.name}={value!r}: a request may ask for at most {self.request_maximum:g} "
                              f"({self.meaning})")


@functools.lru_cache(maxsize=None)
def vocabulary() -> Dict[str, Setting]:
    """name -> :class:`Setting`, in the file's order."""
    raw = load_config(VOCABULARY_FILE)
    out: Dict[str, Setting] = {}
    for name, entry in raw.items():
        values = dict(entry)
        for key in ("choices", "control"):
            values[key] = tuple(values.get(key) or ())
        out[name] = Setting(name=name, **values)
    return out


def by_role(role: str) -> Setting:
    """The setting that plays ``role`` (e.g. ``"duration_scale"``: the one the server's ``speed`` divides)."""
    for setting in vocabulary().values():
        if setting.role == role:
            return setting
    raise KeyError(f"no inference setting has the role {role!r}")


def shared_fields(settings_class: type) -> List[Setting]:
    """The vocabulary settings a settings dataclass declares, in vocabulary order."""
    names = {f.name for f in dataclasses.fields(settings_class)} if dataclasses.is_dataclass(settings_class) else set()
    return [s for name, s in vocabulary().items() if name in names]


def request_settings(settings_class: type) -> List[Setting]:
    """The settings of ``settings_class`` a server request may change."""
    return [s for s in shared_fields(settings_class) if s.request]


def check_settings(settings: Any) -> None:
    """Check every vocabulary setting of a settings dataclass instance (ConfigError naming the first bad one)."""
    for setting in shared_fields(type(settings)):
        setting.check(getattr(settings, setting.name))


def declaration_problems(settings_class: type) -> List[str]:
    """How a family's settings dataclass disagrees with the vocabulary (a field of a shared name with another
    type, a default that fails its check); empty when it agrees. Run over every registered pipeline by the tests."""
    problems = []
    hints = typing.get_type_hints(settings_class)
    for setting in shared_fields(settings_class):
        hint = hints[setting.name]
        kinds = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
        if kinds != {TYPES[setting.type]}:
            problems.append(f"{settings_class.__name__}.{setting.name} is {hint}, the vocabulary says {setting.type}")
        default = next(f.default for f in dataclasses.fields(settings_class) if f.name == setting.name)
        if default is not dataclasses.MISSING and setting.problem(default):
            problems.append(f"{settings_class.__name__}.{setting.name} default {default!r}: "
                            f"{setting.problem(default)}")
    return problems


@dataclass
class InferSettings:
    """Base of every pipeline's settings dataclass: building one checks its vocabulary settings."""

    def __post_init__(self) -> None:
        check_settings(self)
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
