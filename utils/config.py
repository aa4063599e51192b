"""json5 configs with ``base_config`` inheritance, dotted overrides and typed validation.

* ``load_config(path, overrides)`` reads a json5 file, merges it over its ``base_config`` chain (dicts merge
  deeply, lists and scalars replace), then applies command-line overrides such as ``train.batch_size=8``.
* ``validate(cfg, Schema)`` checks the merged dict against a dataclass schema: an unknown or misspelled key
  fails with its full path and the closest valid key, a wrong type fails with the expected type.
* ``save_config`` writes the resolved config (plain JSON, which json5 reads back) next to checkpoints.
* ``migrate_renamed_keys`` brings a config saved under older key names (``RENAMED_KEYS``) up to date, so
  checkpoints written before a rename keep loading; ``validate`` names the new key when a config uses an old one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import types
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping

import json5

from utils.io import atomic_write_text
from utils.wording import plural

BASE_KEY = "base_config"

logger = logging.getLogger(__name__)

# Old dotted key -> new key in the same section, or None where the key was dropped because nothing read it.
# Sizes carry their unit: ``*_frames`` in latent/spectrogram frames, ``*_samples`` in waveform samples.
RENAMED_KEYS: Dict[str, str | None] = {
    "data.sampling_rate": "sample_rate",  # VITS, GAN vocoders, Glow-WaveGAN stage 1
    "model.sampling_rate": "sample_rate",  # WaveGrad 2
    "model.segment_size": "segment_frames",  # VITS, HierSpeech++: generator window in latent frames
    "train.segment_size": "segment_samples",  # VITS: waveform window cut for the decoder/discriminator
    "data.segment_size": "segment_samples",  # GAN vocoders, SpeechSR, Glow-WaveGAN stage 1: crops in samples
    "model.n_layers_q": None,  # VITS / HierSpeech++: official key the model never read
    "data.text_cleaners": None,  # VITS, Glow-WaveGAN: the front end is chosen by data.text_frontend
    "data.max_wav_value": None,  # VITS: official int16 scaling; Echelon's loader returns [-1, 1]
    "infer.pace": "length_scale",  # WaveGrad 2, toy_tts: the duration multiplier (> 1 slower), one name for all TTS
}
# Keys dropped from one model type only (other models read keys of the same name): model_type -> keys.
_UNREAD = ("n_heads", "n_layers", "kernel_size", "p_dropout", "resblock")
DROPPED_KEYS_BY_MODEL: Dict[str, tuple[str, ...]] = {
    "hierspeechpp": tuple(f"model.{k}" for k in (*_UNREAD, "use_spectral_norm", "wav2vec_feature_layer")),
    "hierspeechpp_ttv": tuple(f"model.{k}" for k in (*_UNREAD, "filter_channels", "resblock_kernel_sizes",
                                                     "resblock_dilation_sizes", "use_spectral_norm")),
}


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message names the culprit."""


# --------------------------------------------------------------------------- loading and merging
def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: dicts merge recursively, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_json5(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = json5.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path}: not valid json5: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be an object, got {type(data).__name__}")
    return data


def _load_chain(path: Path, seen: tuple[Path, ...]) -> Dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"base_config cycle: {chain}")
    data = _read_json5(path)
    base_ref = data.pop(BASE_KEY, None)
    if base_ref is None:
        return data
    bases = base_ref if isinstance(base_ref, list) else [base_ref]
    merged: Dict[str, Any] = {}
    for ref in bases:
        if not isinstance(ref, str):
            raise ConfigError(f"{path}: base_config must be a path or a list of paths, got {ref!r}")
        ref_path = Path(ref) if os.path.isabs(ref) else path.parent / ref
        merged = deep_merge(merged, _load_chain(ref_path, (*seen, path)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.batch_size=8"`` -> (["train", "batch_size"], 8). Values are json5; bare words stay strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = json5.loads(raw)
    except ValueError:
        value = raw  # e.g. a path or a plain word
    return parts, value


def apply_overrides(cfg: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    out = json.loads(json.dumps(cfg))  # deep copy of plain data
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """Read ``path`` with its ``base_config`` chain and apply dotted overrides. Returns a plain dict."""
    cfg = _load_chain(Path(path), ())
    return apply_overrides(cfg, overrides)


def save_config(cfg: Mapping[str, Any] | Any, path: str | os.PathLike) -> None:
    """Write the resolved config as JSON, atomically."""
    if dataclasses.is_dataclass(cfg):
        cfg = to_dict(cfg)
    atomic_write_text(path, json.dumps(cfg, indent=2, sort_keys=False) + "\n")


def migrate_renamed_keys(cfg: Mapping[str, Any], source: str = "config") -> Dict[str, Any]:
    """Copy of ``cfg`` with every old key of ``RENAMED_KEYS`` moved to its new name (or dropped), one log line each.

    A config holding both the old and the new name of a key fails: which one was meant is not known.
    """
    out = json.loads(json.dumps(cfg))
    dropped = DROPPED_KEYS_BY_MODEL.get(str(out.get("model_type")), ())
    for old, new in [*RENAMED_KEYS.items(), *((key, None) for key in dropped)]:
        section, _, key = old.rpartition(".")
        node = out.get(section) if section else out
        if not isinstance(node, dict) or key not in node:
            continue
        if new is not None and new in node:
            raise ConfigError(f"{source}: holds both '{old}' and its new name '{section}.{new}'")
        value = node.pop(key)
        if new is None:
            logger.info("%s: dropped '%s' (never read by the model)", source, old)
        else:
            node[new] = value
            logger.info("%s: renamed '%s' to '%s.%s'", source, old, section, new)
    return out


# --------------------------------------------------------------------------- validation
def validate(cfg: Mapping[str, Any], schema: type, path: str = "") -> Any:
    """Build a ``schema`` dataclass instance from ``cfg``, rejecting unknown keys and wrong types."""
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"schema {schema!r} is not a dataclass")
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{path or '<root>'}: expected a section (object), got {type(cfg).__name__}")
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    hints = typing.get_type_hints(schema)
    for key in cfg:
        if key not in fields:
            full = f"{path}.{key}" if path else key
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{path + '.' if path else ''}{close[0]}'?)" if close else ""
            if full in RENAMED_KEYS:
                renamed = RENAMED_KEYS[full]
                hint = f" (renamed to '{path}.{renamed}')" if renamed else " (removed: the model never read it)"
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key '{full}'{hint}; valid keys here: {valid}")
    kwargs = {}
    for name, field in fields.items():
        full = f"{path}.{name}" if path else name
        if name in cfg:
            kwargs[name] = _coerce(cfg[name], hints[name], full)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required config key '{full}'")
    try:
        obj = schema(**kwargs)
    except (TypeError, ValueError) as err:  # a message naming its key in full (infer.KEY=...) needs no prefix
        named = path and str(err).startswith(f"{path}.")
        raise ConfigError(str(err) if named else f"{path or '<root>'}: {err}") from err
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"'{path}': {value!r} matches none of {', '.join(_type_name(a) for a in args)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"'{path}': {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return validate(value, tp, path)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{path}': expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"'{path}': expected {plural(len(args), 'item')}, got {len(value)}")
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{path}': expected an object, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, val_tp, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}': expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{path}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{path}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{path}': expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"'{path}': expected {_type_name(tp)}, got {value!r}")
    return value


def to_dict(obj: Any) -> Dict[str, Any]:
    """Dataclass instance -> plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))
