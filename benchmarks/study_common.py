"""What the int8 studies (``vits_int8_quality.py``, ``hierspeechpp_int8_quality.py``) share: the interleaved,
best-of-N timing with CPU time beside wall time, graph sizes, DNSMOS means and the markdown table they print."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from evaluation.base import EvalItem

Timing = Tuple[float, float]  # (wall s, CPU s: user + sys of this process)


def interleaved_best(runners: Mapping[str, Callable[[Any], Any]], inputs: Sequence[Any],
                     repeats: int) -> Tuple[Dict[str, Timing], Dict[str, List[Any]]]:
    """Every runner on every input, the runners taking turns on each input (so a change of the machine's load hits
    them alike), ``repeats`` passes after one untimed call of each on the first input (lazy loading, compilation,
    first allocations). Returns each runner's best pass as summed (wall, CPU) seconds and the last pass's
    outputs."""
    for run in runners.values():
        run(inputs[0])
    best: Dict[str, Timing] = {name: (np.inf, np.inf) for name in runners}
    outputs: Dict[str, List[Any]] = {name: [] for name in runners}
    for _ in range(repeats):
        totals = {name: [0.0, 0.0] for name in runners}
        outputs = {name: [] for name in runners}
        for item in inputs:
            for name, run in runners.items():
                wall, cpu = time.perf_counter(), time.process_time()
                outputs[name].append(run(item))
                totals[name][0] += time.perf_counter() - wall
                totals[name][1] += time.process_time() - cpu
        for name in runners:
            best[name] = min(best[name], (totals[name][0], totals[name][1]))
    return best, outputs


def megabytes(path: str | os.PathLike) -> float:
    return Path(path).stat().st_size / 2**20


def dnsmos_means(dnsmos, waves: Sequence[np.ndarray], rate: int) -> Dict[str, float]:
    """Mean DNSMOS ``ovrl`` / ``sig`` / ``bak`` of ``waves`` (:class:`evaluation.dnsmos.DNSMOS`, which scores at
    16 kHz: a band above 8 kHz is invisible to it; a silent output scores the scale minimum)."""
    scores = [dnsmos.score_one(EvalItem(str(i), wave, rate)) for i, wave in enumerate(waves)]
    return {key: float(np.mean([s[f"dnsmos_{key}"] for s in scores])) for key in ("ovrl", "sig", "bak")}


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A markdown table; floats with 3 decimals unless already formatted as strings."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
