"""One registry for every pluggable piece of Echelon.

Kinds: ``model``, ``trainer``, ``inference``, ``preparer`` (dataset preparers), ``metric``, ``feature``
(feature extractors), ``pipeline`` (task-level multi-checkpoint inference, :mod:`models.base.tasks`),
``exporter`` (``echelon-export``) and ``pretrained`` (listers of pretrained weights, :mod:`models.base.pretrained`).

A class or function registers itself with ``@register("model", "vits")``.  The registry is *lazy*:
:func:`discover` scans the source tree for ``@register(...)`` lines without importing anything, so
``get("model", "vits")`` imports only ``models/tts/vits/...``.  A missing optional dependency
therefore breaks only the entries that need it, and adding a model needs no central index: one folder,
one decorator, one config.
"""

from __future__ import annotations

import difflib
import importlib
import re
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

KINDS = ("model", "trainer", "inference", "preparer", "metric", "feature", "pipeline", "exporter", "pretrained",
         "finetuner")

# Packages scanned for registrations (relative to the repository root).
_SCAN_PACKAGES = ("models", "processors", "evaluation", "modules")
_ROOT = Path(__file__).resolve().parent.parent
_DECORATOR = re.compile(r"""^\s*@register\(\s*["'](\w+)["']\s*,\s*["']([\w.\-]+)["']""", re.MULTILINE)

_registered: Dict[Tuple[str, str], Any] = {}
_index: Dict[Tuple[str, str], str] | None = None


class RegistryError(KeyError):
    """Unknown kind or name, or an entry whose module failed to import."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator: ``@register("model", "hierspeechpp")`` on a class or function."""
    if kind not in KINDS:
        raise RegistryError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")

    def wrap(obj: Any) -> Any:
        key = (kind, name)
        old = _registered.get(key)
        if old is not None and old is not obj and _qualname(old) != _qualname(obj):
            raise RegistryError(f"{kind} {name!r} registered twice: {_qualname(old)} and {_qualname(obj)}")
        _registered[key] = obj
        obj._registry_key = key
        return obj

    return wrap


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def discover(refresh: bool = False) -> Dict[Tuple[str, str], str]:
    """Map (kind, name) -> module path by scanning source files for ``@register`` lines (no imports)."""
    global _index
    if _index is not None and not refresh:
        return _index
    index: Dict[Tuple[str, str], str] = {}
    for package in _SCAN_PACKAGES:
        base = _ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if "@register(" not in text:
                continue
            module = ".".join(path.relative_to(_ROOT).with_suffix("").parts)
            for kind, name in _DECORATOR.findall(text):
                key = (kind, name)
                if key in index and index[key] != module:
                    raise RegistryError(f"{kind} {name!r} is registered in both {index[key]} and {module}")
                index[key] = module
    _index = index
    return index


def names(kind: str) -> list[str]:
    """All registered names of one kind (imported or not), sorted."""
    _check_kind(kind)
    found = {name for (k, name) in discover() if k == kind}
    found |= {name for (k, name) in _registered if k == kind}
    return sorted(found)


def get(kind: str, name: str) -> Any:
    """Return the registered object, importing only the module that defines it."""
    _check_kind(kind)
    key = (kind, name)
    if key in _registered:
        return _registered[key]
    module = discover().get(key)
    if module is None:
        choices = names(kind)
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RegistryError(f"no {kind} named {name!r}{hint} (known: {', '.join(choices) or 'none'})")
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise RegistryError(f"{kind} {name!r} is defined in {module}, which failed to import: {err}") from err
    if key not in _registered:
        raise RegistryError(f"{module} was imported but did not register {kind} {name!r}")
    return _registered[key]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")
