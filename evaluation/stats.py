"""Summary statistics: mean with a 95 % confidence interval, and bootstrap intervals for corpus-level values.

* Per-utterance metrics: mean ± t_{0.975, n-1} · s / sqrt(n) (Student t, sample std s, NaN values dropped and
  counted).  With n = 1 the half-width is NaN (unknown), never 0.
* Corpus-level values (pooled WER/CER, pooled V/UV F1): percentile bootstrap over utterances (1000 resamples,
  fixed seed, so the report is reproducible); the interval is reported as (low, high).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
from scipy import stats as scipy_stats


def mean_ci95(values: Sequence[float]) -> Dict[str, float]:
    """``{"mean", "ci95", "std", "n", "n_missing"}`` of the finite values (ci95 is the half-width)."""
    array = np.asarray([v for v in values if isinstance(v, (int, float))], dtype=np.float64)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    result = {"mean": math.nan, "ci95": math.nan, "std": math.nan, "n": n, "n_missing": int(len(values) - n)}
    if n == 0:
        return result
    result["mean"] = float(finite.mean())
    if n > 1:
        std = float(finite.std(ddof=1))
        result["std"] = std
        result["ci95"] = float(scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return result


def bootstrap_ci95(
    rows: Sequence[Mapping[str, float]],
    statistic: Callable[[Sequence[Mapping[str, float]]], Dict[str, float]],
    resamples: int = 1000,
    seed: int = 0,
) -> Dict[str, Tuple[float, float]]:
    """Percentile 95 % interval of every value ``statistic(rows)`` returns, resampling rows with replacement."""
    if len(rows) < 2:
        return {}
    rng = np.random.default_rng(seed)
    samples: Dict[str, List[float]] = {}
    for _ in range(resamples):
        picked = [rows[i] for i in rng.integers(0, len(rows), size=len(rows))]
        for key, value in statistic(picked).items():
            samples.setdefault(key, []).append(value)
    out = {}
    for key, values in samples.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            out[key] = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5)))
    return out
