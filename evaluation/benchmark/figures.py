"""Distribution figures of a benchmark task: one PNG per metric column, every system side by side.

Each panel is a box plot (median, quartiles, 1.5 IQR whiskers) with the per-item values drawn on top, so a
small test set is seen item by item. Items without a value (NaN) are left out and counted in the label.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from evaluation.base import Row  # noqa: E402
from evaluation.plots import save_figure  # noqa: E402
from evaluation.report import PERCENT_COLUMNS, column_label  # noqa: E402


SECONDARY_COLUMNS = {"vuv_precision", "vuv_recall"}  # their F1 is drawn; in the table they stay


def finite_values(rows: Sequence[Row], column: str) -> List[float]:
    return [float(r[column]) for r in rows if isinstance(r.get(column), (int, float)) and math.isfinite(r[column])]


def distribution_figure(rows_by_system: Mapping[str, Sequence[Row]], column: str, higher_is_better: bool,
                        title: str, path: Path) -> Path:
    """Box plot + points of ``column`` for every system into ``path`` (PNG)."""
    systems = list(rows_by_system)
    scale = 100.0 if column in PERCENT_COLUMNS else 1.0  # plotted in the unit the tables print (WER in %)
    values = [[scale * x for x in finite_values(rows_by_system[s], column)] for s in systems]
    labels = [f"{s}\n(n={len(v)}/{len(rows_by_system[s])})" for s, v in zip(systems, values)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(systems) + 1.5), 3.4))
    drawn = [v if v else [math.nan] for v in values]
    ax.boxplot(drawn, showfliers=False)
    ax.set_xticks(range(1, len(systems) + 1), labels)
    jitter = np.random.default_rng(0)
    for position, v in enumerate(values, start=1):
        if v:
            ax.plot(position + jitter.uniform(-0.12, 0.12, len(v)), v, "o", ms=3, alpha=0.6, color="tab:blue")
    ax.set_ylabel(f"{column_label(column)} ({'higher' if higher_is_better else 'lower'} is better)")
    ax.set_title(title)
    return save_figure(fig, path, dpi=80)


def task_distributions(rows_by_system: Mapping[str, Sequence[Row]], directions: Mapping[str, bool], task: str,
                       out_dir: Path) -> Dict[str, Path]:
    """One figure per column that has at least one value: ``{column: out_dir/<task>/<column>.png}``."""
    written: Dict[str, Path] = {}
    for column, higher in directions.items():
        if column in SECONDARY_COLUMNS or not any(finite_values(rows, column) for rows in rows_by_system.values()):
            continue
        written[column] = distribution_figure(rows_by_system, column, higher, f"{task}: {column_label(column)}",
                                              out_dir / task / f"{column}.png")
    return written
