"""Inference pipelines: one declaration for systems made of one or several checkpoints.

A pipeline spec (json5) names a registered pipeline, the checkpoints it is made of and its inference settings::

    // hsp_tts.json5: zero-shot TTS = TTV + synthesizer (+ SpeechSR for 24/48 kHz)
    {
      pipeline: "hierspeechpp_tts",
      components: {ttv: "exp/ttv", synthesizer: "exp/synth", sr: "exp/speechsr48k"},  // sr optional
      infer: {output_rate: 48000, noise_scale_vc: 0.5},
    }

Component paths are Echelon checkpoint/experiment directories or official ``.pth`` files (with their
``config.json`` beside them); relative paths are relative to the spec file. A spec may also start from
another one (``base_config``, as training configs do). A single Echelon checkpoint directory is a pipeline
too: its ``model_type``'s pipeline with the directory as its main component.

``infer`` is validated against the pipeline's settings dataclass exactly like a training config (an unknown
key fails naming the closest valid key) after the dotted overrides (``infer.steps=6``) are applied; a
pipeline whose checkpoint saves inference settings (WaveGrad 2's ``infer`` section) starts from those.

Python::

    tts = load_pipeline("hsp_tts.json5", overrides=["infer.noise_scale_vc=0.5"])   # -> a TextToSpeech
    vc = load_pipeline("exp/hierspeechpp")                                         # -> a VoiceConversion

A pipeline is a :class:`models.base.tasks.TaskPipeline` subclass registered with
``@register("pipeline", NAME)`` that sets ``task``, ``settings_class``, ``components`` (name -> required)
and ``main_component`` and implements :meth:`PipelineMixin.from_components`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from models.base import checkpoint as ckpt
from models.base.inference import FileProcessing
from utils.config import ConfigError, apply_overrides, deep_merge, load_config, validate
from utils.registry import RegistryError, get, names
from utils.wording import agree

SPEC_KEYS = ("pipeline", "components", "infer")

# oneDNN (PyTorch's CPU convolutions) keeps a compiled primitive, with its buffers, for every input shape it
# has seen, up to 1024 by default: items of many different lengths (TTS sentences, VC pieces) made the
# resident memory of a long run grow by ~25 MB per new length (10 minutes of VC: +2 GB). A small cache keeps
# memory bounded at no measurable speed cost. Read when oneDNN first runs, so this must happen before any
# model runs; an explicit setting in the environment wins.
ONEDNN_CACHE_CAPACITY = "64"
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)


class PipelineMixin:
    """What a registered pipeline declares besides its task method."""

    task: str = ""  # "tts" | "vc" | "sr"
    settings_class: type = type(None)  # dataclass of inference-time settings (the ``infer`` section)
    components: Mapping[str, bool] = {}  # component name -> required
    main_component: str = ""  # the component a lone checkpoint directory fills
    backends: Tuple[str, ...] = ("torch",)  # what runs the model: "torch", "onnxruntime" (exported graphs)

    @classmethod
    def from_components(cls, components: Mapping[str, Optional[str]], settings: Any,
                        device: str = "cpu") -> "PipelineMixin":
        """Pipelines with more than one backend also take ``backend=`` (None: the pipeline's default)."""
        raise NotImplementedError

    @classmethod
    def saved_settings(cls, components: Mapping[str, Optional[str]]) -> Dict[str, Any]:
        """Settings a checkpoint carries: the defaults the spec's ``infer`` section and ``--set`` overrides start
        from. By default the ``infer`` section of the main component's Echelon checkpoint config (an experiment
        config with an ``infer`` dataclass: WaveGrad 2, toy_tts); none when it has none or is no Echelon
        checkpoint directory (an official ``.pth``: building the pipeline then says what is wrong with it)."""
        path = components.get(cls.main_component)
        if not path or not os.path.isdir(path):
            return {}
        try:
            return dict(ckpt.read_config(ckpt.resolve_checkpoint_dir(path)).get("infer") or {})
        except ckpt.CheckpointError:
            return {}


@dataclass
class PipelineSpec:
    """A resolved spec: which pipeline, its component paths (absolute or as given) and its raw settings."""

    pipeline: str
    components: Dict[str, Optional[str]] = field(default_factory=dict)
    infer: Dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the spec came from (for messages)


def _is_spec_file(path: Path) -> bool:
    return path.is_file() and path.suffix in (".json5", ".json") and path.name != ckpt.CONFIG


def read_spec(path: str | os.PathLike, overrides: Iterable[str] = ()) -> PipelineSpec:
    """Read a json5 pipeline spec (with ``base_config``) and apply dotted overrides."""
    path = Path(path)
    raw = load_config(path, overrides)
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown pipeline spec {agree(len(unknown), 'key', 'keys')} {unknown}; valid keys: "
                          f"{', '.join(SPEC_KEYS)}")
    if not isinstance(raw.get("pipeline"), str):
        raise ConfigError(f"{path}: 'pipeline' must name a registered pipeline ({', '.join(names('pipeline'))})")
    components = raw.get("components") or {}
    if not isinstance(components, Mapping):
        raise ConfigError(f"{path}: 'components' must be an object of name: checkpoint path")
    resolved = {}
    for name, value in components.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: components.{name} must be a path, got {value!r}")
        resolved[name] = value if value is None or os.path.isabs(value) else str(path.parent / value)
    return PipelineSpec(raw["pipeline"], resolved, dict(raw.get("infer") or {}), str(path))


@dataclass
class Resolved:
    """What a model argument names: a task pipeline's spec, or a model with a runner only (its own inputs, e.g.
    a vocoder's copy synthesis) and the checkpoint that runner loads."""

    spec: Optional[PipelineSpec] = None
    runner: Optional[type] = None
    checkpoint: Optional[str] = None
    model_type: str = ""  # the runner's registered name (for messages)


def _spec_overrides(overrides: Iterable[str]) -> List[str]:
    overrides = list(overrides)
    bad = [o for o in overrides if not o.split("=", 1)[0].startswith(("infer.", "components."))]
    if bad:
        raise ConfigError(f"override {bad[0]!r}: pipeline overrides start with 'infer.' or 'components.'")
    return overrides


def with_overrides(spec: PipelineSpec, overrides: Iterable[str]) -> PipelineSpec:
    """``spec`` with dotted ``infer.KEY=VALUE`` / ``components.NAME=PATH`` overrides applied."""
    overrides = _spec_overrides(overrides)
    if overrides:
        raw = apply_overrides({"components": dict(spec.components), "infer": dict(spec.infer)}, overrides)
        spec.components, spec.infer = dict(raw["components"] or {}), dict(raw["infer"] or {})
    return spec


def component_pairs(items: Iterable[str]) -> List[Tuple[str, str]]:
    """``NAME=PATH`` strings (``--component``) -> (name, path) pairs."""
    pairs = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--component {item!r}: expected NAME=PATH")
        pairs.append((name.strip(), path.strip()))
    return pairs


def _registered_model(model_type: str, target: Optional[str], read_from_checkpoint: bool) -> Resolved:
    """A model type (given or read from a checkpoint) -> its pipeline's spec with ``target`` as the main
    component, or its runner when it has no pipeline."""
    if model_type in names("pipeline"):
        cls = get("pipeline", model_type)
        return Resolved(PipelineSpec(model_type, {cls.main_component: target} if target else {}, {},
                                     target or model_type))
    if model_type in names("inference"):
        return Resolved(runner=get("inference", model_type), checkpoint=target, model_type=model_type)
    runners = sorted(set(names("inference")) - set(names("pipeline")))
    known = f"pipelines: {', '.join(names('pipeline'))}; runners: {', '.join(runners)}"
    if read_from_checkpoint:
        raise RegistryError(f"{target} holds a {model_type!r} checkpoint, which has no inference pipeline or runner "
                            f"({known})")
    raise RegistryError(f"no pipeline or runner named {model_type!r} ({known})")


def resolve(target: str | os.PathLike | Mapping[str, Any] | None = None, model_type: Optional[str] = None,
            components: Iterable[Tuple[str, str]] = (), overrides: Iterable[str] = ()) -> Resolved:
    """The one place a model argument is read, for ``echelon-infer``, ``echelon-serve`` and :func:`load_pipeline`.

    ``target``: a pipeline spec file (.json5/.json) or dict, an Echelon checkpoint/experiment directory, an
    official ``.pth`` (with ``model_type`` saying which model it is), or None with ``model_type`` alone (a
    pipeline with no checkpoint of its own, e.g. bundled weights). ``components``: (name, path) pairs that set
    or replace the spec's; ``overrides``: ``infer.KEY=VALUE`` / ``components.NAME=PATH``. A model with a runner
    only takes neither."""
    overrides, components = _spec_overrides(overrides), list(components)
    if isinstance(target, Mapping):
        raw = apply_overrides(dict(target), overrides)
        spec = PipelineSpec(str(raw.get("pipeline")), dict(raw.get("components") or {}), dict(raw.get("infer") or {}),
                            "<dict>")
        resolved = Resolved(spec)
    elif target is not None and _is_spec_file(Path(target)):
        resolved = Resolved(read_spec(target, overrides))
        if model_type is not None and model_type != resolved.spec.pipeline:
            raise ConfigError(f"{target} is a {resolved.spec.pipeline!r} pipeline spec, not {model_type!r}: "
                              f"leave out the model type")
    else:
        target = None if target is None else str(target)
        if target is None and model_type is None:
            raise ConfigError("give a pipeline spec, a checkpoint directory or a model type")
        if model_type is None and Path(target).suffix == ".pth":
            raise ConfigError(f"{target} is an official checkpoint file: say which model it is with --model_type")
        read_type = model_type is None
        if read_type:
            if not Path(target).exists():
                raise ckpt.CheckpointNotFoundError(f"pipeline spec or checkpoint not found: {target}")
            model_type = ckpt.model_type_of(ckpt.resolve_checkpoint_dir(target))
        resolved = _registered_model(model_type, target, read_from_checkpoint=read_type)
        if resolved.spec is not None:
            with_overrides(resolved.spec, overrides)
        elif overrides or components:
            raise ConfigError(f"{model_type!r} has no pipeline settings or components to set")
    if resolved.spec is not None:
        resolved.spec.components.update(components)
    return resolved


def resolve_spec(spec_or_dir: str | os.PathLike | Mapping[str, Any], overrides: Iterable[str] = ()) -> PipelineSpec:
    """A spec file, a spec dict or a checkpoint directory -> :class:`PipelineSpec` (overrides applied)."""
    resolved = resolve(spec_or_dir, overrides=overrides)
    if resolved.spec is None:
        raise ckpt.CheckpointError(f"{spec_or_dir} holds a model with a runner only, which has no inference "
                                   f"pipeline of its own (pipelines: {', '.join(names('pipeline'))})")
    return resolved.spec


def pipeline_class(spec: PipelineSpec) -> Any:
    """The registered pipeline class a spec names."""
    return get("pipeline", spec.pipeline)


def validate_settings(cls: Any, infer: Mapping[str, Any]) -> Any:
    """The pipeline's settings dataclass from the ``infer`` section: an unknown key names the closest one, and the
    settings of the shared vocabulary are checked as they are everywhere (:mod:`models.base.infer_settings`:
    a positive speaking rate, noise scales >= 0, a seed >= 0, ...)."""
    return validate(dict(infer), cls.settings_class, "infer")


def pipeline_name(spec: PipelineSpec) -> str:
    """What messages call a built pipeline: its spec file's stem or checkpoint directory's name, else the
    registered pipeline's name."""
    if spec.source.startswith("<"):
        return spec.pipeline
    path = Path(spec.source)
    return (path.stem if path.suffix in (".json5", ".json") else path.resolve().name) or spec.pipeline


def check_components(cls: Any, spec: PipelineSpec) -> Dict[str, Optional[str]]:
    """Every required component given, no unknown one; absent optional components are None."""
    unknown = sorted(set(spec.components) - set(cls.components))
    if unknown:
        raise ConfigError(f"{spec.source}: pipeline {spec.pipeline!r} has no "
                          f"{agree(len(unknown), 'component', 'components')} {unknown}; "
                          f"it takes {', '.join(cls.components)}")
    missing = [n for n, required in cls.components.items() if required and not spec.components.get(n)]
    if missing:
        raise ConfigError(f"{spec.source}: pipeline {spec.pipeline!r} needs "
                          f"{agree(len(missing), 'component', 'components')} {missing} "
                          f"(write a pipeline spec or pass --component {missing[0]}=PATH)")
    return {name: spec.components.get(name) for name in cls.components}


def load_pipeline(spec_or_dir: str | os.PathLike | Mapping[str, Any], overrides: Iterable[str] = (),
                  device: str = "cpu", backend: Optional[str] = None) -> Any:
    """Build the task object of a spec file, spec dict or checkpoint directory (see the module docstring).
    ``backend``: "torch" or "onnxruntime" (exported graphs, CPU) where the pipeline has it; None: its default."""
    spec = resolve_spec(spec_or_dir, overrides)
    return build_pipeline(spec, device, backend)


def load_resolved(resolved: Resolved, device: str = "cpu", backend: Optional[str] = None) -> Any:
    """The task object of anything :func:`resolve` returns: a built pipeline, or a runner-only model as a
    :class:`models.base.inference.FileProcessing` (task ``process``; torch only)."""
    if resolved.spec is not None:
        return build_pipeline(resolved.spec, device, backend)
    name = resolved.model_type
    if backend not in (None, "torch"):
        raise ConfigError(f"backend {backend!r}: {name} runs on torch only")
    if not resolved.checkpoint:
        raise ConfigError(f"{name} needs its checkpoint directory")
    built = FileProcessing(resolved.runner.from_checkpoint(resolved.checkpoint, device=device))
    built.name = Path(resolved.checkpoint).resolve().name or name
    return built


def build_pipeline(spec: PipelineSpec, device: str = "cpu", backend: Optional[str] = None) -> Any:
    cls = pipeline_class(spec)
    components = check_components(cls, spec)
    settings = validate_settings(cls, deep_merge(cls.saved_settings(components), spec.infer))
    if backend is None or (backend == "torch" and tuple(cls.backends) == ("torch",)):
        built = cls.from_components(components, settings, device)
    elif backend not in cls.backends:
        raise ConfigError(f"pipeline {spec.pipeline!r} runs on {', '.join(cls.backends)}, not {backend!r}")
    else:
        built = cls.from_components(components, settings, device, backend=backend)
    built.name = pipeline_name(spec)
    return built
