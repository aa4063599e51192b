"""What a benchmark run produced, in the shape the report renders: systems, tasks, per-item rows and media.

The runner (``evaluation/benchmark/runner.py``) fills these; ``report.py`` turns them into Markdown and a
static HTML page. Paths are absolute here; the report makes them relative to the page it writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from evaluation.base import Row
from evaluation.benchmark.protocol import Job


GROUND_TRUTH = "ground_truth"  # the recordings themselves, compared like a system (an upper bound, never ranked)


@dataclass
class SystemEntry:
    """One system of the benchmark file. ``reason`` says why it was skipped (missing weights, dependency...)."""

    name: str
    pipeline: str
    available: bool
    reason: str = ""
    parameters: Optional[int] = None
    peak_memory_mb: Optional[float] = None
    tasks: Sequence[str] = ()


@dataclass
class Efficiency:
    """Speed of one system on one task: seconds of compute per second of audio generated (same thread count)."""

    wall_seconds: float
    cpu_seconds: float
    audio_seconds: float
    items: int
    failed: int = 0

    @property
    def rtf_wall(self) -> float:
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan

    @property
    def rtf_cpu(self) -> float:
        return self.cpu_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan


@dataclass
class ItemMedia(Job):
    """A protocol item with every system's output (system name -> audio file)."""

    outputs: Dict[str, Path] = field(default_factory=dict)


@dataclass
class TaskReport:
    """Results of one protocol task (e.g. zero-shot cross-sentence TTS) over the systems that support it.

    ``summary`` is :func:`evaluation.report.summarize` of ``rows`` (system -> per-item metric rows, restricted to
    the items every compared system produced); ``directions`` maps each reported column to higher-is-better;
    ``item_plots`` are the best/worst figures (F0 overlay + spectrograms) per system; ``excluded`` names the
    items left out of the comparison and why.
    """

    task: str
    title: str
    description: str
    summary: Mapping[str, Any]
    rows: Mapping[str, Sequence[Row]]
    directions: Mapping[str, bool]
    efficiency: Mapping[str, Efficiency] = field(default_factory=dict)
    items: Sequence[ItemMedia] = ()
    item_plots: Mapping[str, Sequence[Path]] = field(default_factory=dict)
    excluded: Mapping[str, str] = field(default_factory=dict)

    @property
    def systems(self) -> List[str]:
        return list(self.summary)


@dataclass
class BenchmarkReport:
    title: str
    protocol: Sequence[str]  # one line per protocol fact (test set, prompts, seeds, threads...)
    systems: Sequence[SystemEntry]
    tasks: Sequence[TaskReport]
    created: str = ""
