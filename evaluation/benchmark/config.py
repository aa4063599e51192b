"""The benchmark file (json5, validated like every Echelon config: an unknown key fails naming the closest).

    {
      title: "HierSpeech++ and baselines, mini corpus",
      threads: 1,                          // torch/BLAS threads of every system (RTF is comparable only so)
      protocol: {
        manifest: "exp/hierspeechpp_mini/manifests/test.jsonl",   // the test set (Echelon JSONL manifest)
        tasks: ["tts_cross_sentence", "tts_continuation", "vc", "tts"],
        max_items: 20, seed: 1234, prefix_seconds: 3.0, ground_truth: true,
      },
      evaluation: {metrics: ["wer", "sim", "f0", "mcd", "dnsmos"], asr: "pocketsphinx"},
      systems: [
        {name: "hsp_vc", spec: {pipeline: "hierspeechpp_vc", components: {synthesizer: "exp/hsp/synth"}}},
        {name: "vits", spec: "exp/vits_mini"},                 // a checkpoint directory or a spec file
        {name: "espeak", spec: {pipeline: "espeak_ng"}},
      ],
    }

Without ``systems`` the benchmark runs every trained experiment found under ``discover.exp_root`` (of the corpus
``discover.dataset`` when given) plus the checkpoint-free baselines: ``evaluation/benchmark/discover.py``.

Relative paths (manifest, spec files, checkpoint directories) are relative to the benchmark file; ``@NAME@``
in any string is filled from ``--var NAME=VALUE`` (egs/benchmark/run.sh gives ``EXP_ROOT`` and ``DATASET``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from evaluation.benchmark.discover import discover_systems
from evaluation.benchmark.system_config import SystemConfig
from evaluation.runner import DEFAULT_METRICS
from utils.config import ConfigError, load_config, validate
from utils.wording import agree

log = logging.getLogger(__name__)

TASKS = ("tts_cross_sentence", "tts_continuation", "vc", "tts")


@dataclass
class ProtocolConfig:
    manifest: str = ""  # test set; its folder's train/valid/test.jsonl are the prompt pool unless `pool` is set
    pool: List[str] = field(default_factory=list)  # manifests to draw same-speaker prompts / VC targets from
    tasks: List[str] = field(default_factory=lambda: list(TASKS))
    max_items: int = 0  # first N test items by id (0 = all)
    seed: int = 1234
    prefix_seconds: float = 3.0  # continuation: the prompt is this prefix of the target utterance
    ground_truth: bool = True  # add the recordings themselves as a system (the upper bound) where they exist

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown {agree(len(unknown), 'task', 'tasks')} {unknown}; tasks are {', '.join(TASKS)}")
        if self.prefix_seconds <= 0:
            raise ValueError("prefix_seconds must be positive")


@dataclass
class EvaluationConfig:
    """Metric names (the ``metric`` registry) and the options of :class:`evaluation.runner.EvaluationOptions`."""

    metrics: List[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    asr: Optional[str] = None  # None: evaluation's default backend
    asr_model: Optional[str] = None
    sim_backend: str = "resemblyzer"
    sim_model: Optional[str] = None
    f0_method: str = "yaapt"
    batch_size: int = 8
    plots: bool = True


@dataclass
class DiscoverConfig:
    """Where to find the systems when the file lists none (evaluation/benchmark/discover.py)."""

    exp_root: str = ""  # "" = no discovery
    dataset: str = ""  # only experiments bound to this corpus (their recipe_settings); "" = any
    baselines: bool = True  # add registered pipelines that need no checkpoint (espeak-ng)


@dataclass
class BenchmarkConfig:
    title: str = "Echelon benchmark"
    threads: int = 1
    device: str = "cpu"
    max_audio_items: int = 30  # audio players per task in the HTML page
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    discover: DiscoverConfig = field(default_factory=DiscoverConfig)
    systems: List[SystemConfig] = field(default_factory=list)  # empty: discovered (see DiscoverConfig)

    def __post_init__(self) -> None:
        names = [s.name for s in self.systems]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"system {agree(len(twice), 'name', 'names')} {twice} used twice")
        if "ground_truth" in names:
            raise ValueError("'ground_truth' is the name of the recordings' row; rename that system")
        if self.threads < 1:
            raise ValueError("threads must be >= 1")


def _absolute(path: str, base: Path) -> str:
    return path if not path or os.path.isabs(path) else str((base / path).resolve())


_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def fill_placeholders(value: Any, variables: Mapping[str, str], where: str = "") -> Any:
    """Replace ``@NAME@`` in every string of a loaded config; a placeholder without a value is an error."""
    if isinstance(value, dict):
        return {k: fill_placeholders(v, variables, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: "re.Match[str]") -> str:
        if match.group(1) not in variables:
            raise ConfigError(f"'{where}': placeholder {match.group(0)} has no value (give --var {match.group(1)}=...)")
        return variables[match.group(1)]

    return _PLACEHOLDER.sub(substitute, value)


def read_benchmark_config(path: str | os.PathLike, overrides: List[str] = (),
                          variables: Optional[Mapping[str, str]] = None,
                          systems: Optional[List[str]] = None) -> BenchmarkConfig:
    """Load and validate a benchmark file (``@NAME@`` placeholders filled from ``variables``); relative paths
    become absolute (relative to the file). ``systems`` (``NAME=SPEC`` strings, paths relative to the current
    directory) replace the file's list and its discovery."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark file not found: {path}")
    raw = fill_placeholders(load_config(path, overrides), dict(variables or {}))
    cfg: BenchmarkConfig = validate(raw, BenchmarkConfig)
    base = path.resolve().parent
    if systems:
        bad = [s for s in systems if "=" not in s]
        if bad:
            raise ConfigError(f"--system takes NAME=SPEC (a checkpoint dir or spec file), got {bad[0]!r}")
        cfg.systems = [SystemConfig(name=s.split("=", 1)[0], spec=os.path.abspath(s.split("=", 1)[1])) for s in systems]
    if not cfg.protocol.manifest:
        raise ConfigError(f"{path}: protocol.manifest (the test set) is required")
    cfg.protocol.manifest = _absolute(cfg.protocol.manifest, base)
    cfg.protocol.pool = [_absolute(p, base) for p in cfg.protocol.pool]
    if not cfg.systems and cfg.discover.exp_root:
        cfg.systems = discovered_systems(_absolute(cfg.discover.exp_root, base), cfg.discover)
    if not cfg.systems:
        raise ConfigError(f"{path}: no systems: list them under 'systems' or set discover.exp_root")
    for system in cfg.systems:
        if isinstance(system.spec, str):
            system.spec = _absolute(system.spec, base)
        else:
            components: Dict[str, Any] = dict(system.spec.get("components") or {})
            system.spec = {**system.spec, "components": {k: _absolute(v, base) if isinstance(v, str) else v
                                                         for k, v in components.items()}}
    return cfg


def discovered_systems(exp_root: str, settings: DiscoverConfig) -> List[SystemConfig]:
    """The systems :func:`evaluation.benchmark.discover.discover_systems` finds; what it leaves out is logged."""
    found = discover_systems(exp_root, settings.dataset or None, settings.baselines)
    for where, why in found.left_out:
        log.info("discovery: left out %s: %s", where, why)
    log.info("discovery under %s%s: %s", exp_root, f" (dataset {settings.dataset})" if settings.dataset else "",
             ", ".join(f"{s.name}={s.spec}" for s in found.systems) or "nothing")
    return found.systems
