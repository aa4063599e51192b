"""The systems of a benchmark found on disk: every trained experiment under an experiment root.

A benchmark file that lists no ``systems`` and sets ``discover.exp_root`` (``egs/benchmark/conf/default.json5``)
benchmarks what the recipes trained, found by :func:`discover_systems`:

* an **experiment directory** (one holding ``checkpoints/`` with at least one complete checkpoint) whose saved
  ``model_type`` is a registered TTS or VC pipeline that its own checkpoint can build (every other required
  component of the pipeline absent): the system is named after the model type;
* a **pipeline spec** ``NAME.pipeline.json5`` (what a recipe writes for a system made of several checkpoints,
  e.g. HierSpeech++'s TTV + synthesizer): the system is named ``NAME``;
* with ``baselines``, every registered TTS/VC pipeline that needs no checkpoint at all (espeak-ng).

An experiment bound to another corpus than ``dataset`` (its recipe's ``recipe_settings``, in it or a parent up
to the root) is left out, as are checkpoints of other tasks (SpeechSR) and of pipelines that need further
components (a TTV alone); :class:`Discovery` lists each with the reason. Two systems with the same name are told
apart by their path under the root (``vits_mini-vits``, ``vits_vctk-vits``). Nothing is loaded: only
``config.json`` / ``meta.json`` files are read and pipeline classes imported for their declared components.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from evaluation.benchmark.system_config import SystemConfig
from utils.wording import agree

SPEC_SUFFIX = ".pipeline.json5"
BENCHMARK_TASKS = ("tts", "vc")
SKIP_DIRS = {"checkpoints", "downloads", "manifests", "infer", "eval", "features", "data", "protocol", "systems"}


@dataclass
class Discovery:
    systems: List[SystemConfig] = field(default_factory=list)
    left_out: List[Tuple[str, str]] = field(default_factory=list)  # (path, why)


def _bound_dataset(path: Path, root: Path) -> Optional[str]:
    """The dataset of the nearest recipe_settings at or above ``path`` (within ``root``), if any."""
    for folder in (path, *path.parents):
        settings = folder / "recipe_settings"
        if settings.is_file():
            for line in settings.read_text(encoding="utf-8").splitlines():
                if line.startswith("dataset="):
                    return line[len("dataset="):]
        if folder == root:
            break
    return None


def _pipeline_class(name: str) -> Any:
    from utils.registry import get

    return get("pipeline", name)


def _standalone(cls: Any) -> Optional[str]:
    """Why a checkpoint of this pipeline alone is not a benchmark system, or None."""
    if getattr(cls, "components", None) is None:
        return "its pipeline does not load from a checkpoint directory (no declared components)"
    if cls.task not in BENCHMARK_TASKS:
        return f"a {cls.task} pipeline (the benchmark's tasks are TTS and VC)"
    missing = [n for n, required in cls.components.items() if required and n != cls.main_component]
    if missing:
        return (f"needs {agree(len(missing), 'component', 'components')} {missing} besides its own checkpoint: give a "
                f"{SPEC_SUFFIX} spec")
    return None


def _experiment(path: Path) -> Tuple[Optional[str], str]:
    """(model_type, "") of the newest checkpoint under path/checkpoints, or (None, why not)."""
    from models.base import checkpoint as ckpt

    try:
        latest = ckpt.latest_checkpoint(path / "checkpoints")
        if latest is None:
            return None, "no complete checkpoint"
        return ckpt.model_type_of(latest), ""
    except (ckpt.CheckpointError, OSError, ValueError) as err:
        return None, f"unreadable checkpoint ({err})"


def _walk(root: Path, max_depth: int) -> List[Path]:
    """Folders under root (root included) down to max_depth, not descending into experiments or data folders."""
    found, stack = [], [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        found.append(folder)
        if (folder / "checkpoints").is_dir() or depth >= max_depth:
            continue
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        stack.extend((child, depth + 1) for child in children if child.name not in SKIP_DIRS)
    return sorted(found)


def discover_systems(exp_root: str | os.PathLike, dataset: Optional[str] = None, baselines: bool = True,
                     max_depth: int = 4) -> Discovery:
    """The benchmark systems under ``exp_root`` (see the module docstring), sorted by name."""
    from utils.registry import RegistryError, names

    root = Path(exp_root).resolve()
    result = Discovery()
    if not root.is_dir():
        result.left_out.append((str(root), "no such directory"))
    pipelines = set(names("pipeline"))
    candidates: List[Tuple[str, Path, Any]] = []  # (name, where, spec)
    for folder in _walk(root, max_depth) if root.is_dir() else []:
        bound = _bound_dataset(folder, root)
        other_corpus = dataset and bound and bound != dataset
        for spec_file in sorted(folder.glob(f"*{SPEC_SUFFIX}")):
            if other_corpus:
                result.left_out.append((str(spec_file), f"dataset {bound}, not {dataset}"))
            else:
                candidates.append((spec_file.name[: -len(SPEC_SUFFIX)], spec_file, str(spec_file)))
        if not (folder / "checkpoints").is_dir():
            continue
        model_type, why = _experiment(folder)
        if model_type is None:
            result.left_out.append((str(folder), why))
            continue
        if other_corpus:
            result.left_out.append((str(folder), f"dataset {bound}, not {dataset}"))
            continue
        if model_type not in pipelines:
            result.left_out.append((str(folder), f"model_type {model_type!r} is not a registered pipeline"))
            continue
        try:
            why = _standalone(_pipeline_class(model_type))
        except RegistryError as err:
            why = f"pipeline {model_type!r} cannot be imported ({err})"
        if why:
            result.left_out.append((str(folder), why))
        else:
            candidates.append((model_type, folder, str(folder)))
    result.systems = _named(candidates, root)
    if baselines:
        taken = {s.name for s in result.systems}
        for name in sorted(pipelines - taken):
            try:
                cls = _pipeline_class(name)
            except RegistryError:
                continue
            components = getattr(cls, "components", None)  # None: not loadable from a spec (vits_aligned)
            if components is not None and cls.task in BENCHMARK_TASKS and not any(components.values()):
                result.systems.append(SystemConfig(name=name, spec={"pipeline": name}))
    result.systems.sort(key=lambda s: s.name)
    return result


def _named(candidates: List[Tuple[str, Path, Any]], root: Path) -> List[SystemConfig]:
    """One SystemConfig per candidate; a name found twice becomes the path under root joined by '-'."""
    counts: Dict[str, int] = {}
    for name, _, _ in candidates:
        counts[name] = counts.get(name, 0) + 1
    systems = []
    for name, where, spec in candidates:
        if counts[name] > 1:
            relative = where.relative_to(root)
            parts = [*relative.parent.parts, name] if where.is_file() else list(relative.parts)
            name = "-".join(parts) or name
        systems.append(SystemConfig(name=name, spec=spec))
    return systems
