"""Turn an ``echelon-evaluate`` output folder into a :class:`TaskReport` (the benchmark scores through it).

The benchmark writes each task's outputs as a normal evaluation input (manifest, prompts, one folder per
system) and runs :func:`evaluation.runner.evaluate` on it, so its numbers are exactly what ``echelon-evaluate``
gives on the same files; this module reads that folder back (``summary.json``, ``per_utterance.csv``, plots).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

from evaluation.benchmark.results import Efficiency, ItemMedia, TaskReport
from evaluation.report import read_csv

def task_from_evaluation(
    task: str,
    title: str,
    description: str,
    eval_dir: Path,
    items: Sequence[ItemMedia] = (),
    efficiency: Optional[Mapping[str, Efficiency]] = None,
    excluded: Optional[Mapping[str, str]] = None,
) -> TaskReport:
    eval_dir = Path(eval_dir)
    payload = json.loads((eval_dir / "summary.json").read_text(encoding="utf-8"))
    summary = payload["systems"]
    directions = {column: bool(stats["higher_is_better"])
                  for entry in summary.values() for column, stats in entry["metrics"].items()}
    plots = {system: [eval_dir / p for p in paths] for system, paths in payload.get("plots", {}).items()}
    return TaskReport(task=task, title=title, description=description, summary=summary,
                      rows=read_csv(eval_dir / "per_utterance.csv"), directions=directions,
                      efficiency=dict(efficiency or {}), items=list(items), item_plots=plots,
                      excluded=dict(excluded or {}))
