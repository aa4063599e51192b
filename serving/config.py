"""``serve.json5``: which models a server loads and its limits (validated like every config: unknown keys fail).

::

    {
      models: {
        joe: {pipeline: "exp/joe"},                                   // checkpoint dir or pipeline spec (.json5)
        vctk: {pipeline: "exp/vctk", voices: {alloy: "p225", onyx: "p226"}},   // OpenAI voice names -> speakers
        hsp: {pipeline: "hsp_tts.json5", overrides: ["infer.output_rate=24000"]},
        sr48: {model_type: "speechsr", overrides: ["infer.target_rate=48000"]},   // bundled weights
        hsp_official: {pipeline: "ckpt/G_1200000.pth", model_type: "hierspeechpp"},  // an official .pth
        joe_ort: {pipeline: "exp/joe", backend: "onnxruntime"},      // its exported graphs on onnxruntime
        hifigan: {pipeline: "exp/hifigan"},    // a model with a runner only: POST /v1/audio/process
      },
      limits: {max_text_chars: 4096, max_upload_bytes: 20000000, workers: 0, queue_size: 16},  // 0: the cores
      api_key: "",       // or --api_key / ECHELON_API_KEY; empty = no key
    }

Relative paths are relative to the file. Only these models can be used: a request names a model by its key,
never a path. An entry is read as ``echelon-infer`` reads ``--pipeline``/``--model_type``/``--component``/
``--set``/``--backend`` (one resolver: ``models.base.pipeline.resolve``), so the server takes every model the CLI
takes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from utils.config import ConfigError, apply_overrides, load_config, validate


@dataclass
class ModelEntry:
    """One served model, as ``echelon-infer`` takes it: ``pipeline`` (a spec file, a checkpoint dir, or an official
    ``.pth`` with ``model_type``) and/or ``model_type`` (a registered pipeline built from ``components`` alone,
    e.g. ``speechsr`` with its bundled weights)."""

    pipeline: str = ""
    model_type: str = ""
    components: Dict[str, str] = field(default_factory=dict)  # as echelon-infer --component NAME=PATH
    overrides: List[str] = field(default_factory=list)  # "infer.KEY=VALUE", as echelon-infer --set
    backend: str = ""  # "torch" or "onnxruntime", as echelon-infer --backend ("": the pipeline's default)
    # a voice name a request may send (OpenAI's "alloy", ...) -> a speaker of a multi-speaker model
    voices: Dict[str, str] = field(default_factory=dict)
    workers: int = 0  # steps of this model run at once (0: limits.workers; 1 for a pipeline that needs it)


@dataclass
class Limits:
    """What one request may ask for, and how much work the server takes on (defaults in brackets)."""

    max_text_chars: int = 4096  # characters of ``input`` [4096, as OpenAI's API]
    max_upload_bytes: int = 20_000_000  # bytes of one uploaded or base64 audio file [20 MB]
    max_upload_seconds: float = 120.0  # seconds of one uploaded audio [120]
    # steps of one model computed at once, each model in its own pool (serving/workers.py); 0: the CPU cores.
    # Only pipelines whose calls may run in several threads get more than 1 [0]
    workers: int = 0
    queue_size: int = 16  # requests admitted beyond those running; more get 429 [16]
    request_timeout_seconds: float = 120.0  # a request still unfinished after this gets 504 [120]
    retry_after_seconds: int = 2  # Retry-After of a 429 [2]
    drain_seconds: float = 60.0  # on SIGTERM, how long in-flight requests may still run [60]


@dataclass
class ServeConfig:
    models: Dict[str, ModelEntry] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    api_key: str = ""
    ui: bool = True  # mount the Gradio demo at /ui
    warm_up: bool = True  # one small request per model at start-up: the first user request pays no one-off costs


def _check(cfg: ServeConfig, source: str) -> ServeConfig:
    if not cfg.models:
        raise ConfigError(f"{source}: 'models' names no model to serve")
    for name, entry in cfg.models.items():
        if not name or "/" in name or name != name.strip():
            raise ConfigError(f"{source}: model name {name!r} must be non-empty, without '/' or spaces around it")
        if not entry.pipeline and not entry.model_type:
            raise ConfigError(f"{source}: models.{name} needs 'pipeline' (spec, checkpoint dir or official .pth) "
                              f"or 'model_type' (a registered pipeline), or both")
    lim = cfg.limits
    for key in ("max_text_chars", "max_upload_bytes"):
        if getattr(lim, key) < 1:
            raise ConfigError(f"{source}: limits.{key} must be >= 1, got {getattr(lim, key)}")
    if lim.workers < 0 or any(entry.workers < 0 for entry in cfg.models.values()):
        raise ConfigError(f"{source}: limits.workers and models.NAME.workers must be >= 0 (0: the CPU cores / "
                          f"limits.workers)")
    for key in ("max_upload_seconds", "request_timeout_seconds"):
        if getattr(lim, key) <= 0:
            raise ConfigError(f"{source}: limits.{key} must be > 0, got {getattr(lim, key)}")
    if lim.queue_size < 0 or lim.retry_after_seconds < 0 or lim.drain_seconds < 0:
        raise ConfigError(f"{source}: limits.queue_size, retry_after_seconds and drain_seconds must be >= 0")
    return cfg


def _absolute(value: str, base: Path) -> str:
    return value if not value or os.path.isabs(value) else str(base / value)


def read_serve_config(path: str | os.PathLike, overrides: List[str] = ()) -> ServeConfig:
    """Load and validate ``serve.json5`` (``base_config`` and dotted overrides as for training configs)."""
    path = Path(path)
    cfg = validate(load_config(path, overrides), ServeConfig)
    base = path.parent
    for entry in cfg.models.values():
        entry.pipeline = _absolute(entry.pipeline, base)
        entry.components = {k: _absolute(v, base) for k, v in entry.components.items()}
    return _check(cfg, str(path))


def single_model_config(pipeline: str = "", overrides: List[str] = (), model_type: str = "", backend: str = "",
                        components: Dict[str, str] | None = None) -> ServeConfig:
    """``--ckpt_dir DIR`` / ``--pipeline SPEC`` / ``--model_type NAME`` (with ``--component``/``--backend``): that
    one model, named after the directory, the file's stem or the model type; ``overrides`` (``--set
    limits.workers=2``, ``--set models.NAME.overrides=...``) are applied before the checks, as for a serve.json5."""
    path = Path(pipeline) if pipeline else None
    if path is None:
        name = model_type or "model"
    else:
        name = (path.stem if path.is_file() else path.resolve().name) or "model"
    entry = {"pipeline": str(path) if path else "", "model_type": model_type, "backend": backend,
             "components": dict(components or {})}
    cfg = validate(apply_overrides({"models": {name: entry}}, overrides), ServeConfig)
    return _check(cfg, pipeline or model_type)
