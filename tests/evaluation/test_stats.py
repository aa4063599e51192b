"""Mean ± 95 % CI and the bootstrap interval of corpus values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evaluation.intelligibility import corpus_error_rates
from evaluation.stats import bootstrap_ci95, mean_ci95


def test_mean_ci95_matches_student_t() -> None:
    values = [1.0, 2.0, 4.0, math.nan, 7.0]
    result = mean_ci95(values)
    finite = np.array([1.0, 2.0, 4.0, 7.0])
    low, high = scipy_stats.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=scipy_stats.sem(finite))
    assert result["n"] == 4 and result["n_missing"] == 1
    assert result["mean"] == pytest.approx(finite.mean())
    assert result["ci95"] == pytest.approx((high - low) / 2)


def test_single_value_has_unknown_interval_and_empty_has_no_mean() -> None:
    one = mean_ci95([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["ci95"])
    assert math.isnan(mean_ci95([math.nan])["mean"])


def test_bootstrap_interval_brackets_the_pooled_value() -> None:
    rng = np.random.default_rng(3)
    rows = [{"wer_errors": float(e), "wer_words": 10.0, "cer_errors": 1.0, "cer_chars": 50.0}
            for e in rng.integers(0, 6, size=40)]
    pooled = corpus_error_rates(rows)["wer_corpus"]
    intervals = bootstrap_ci95(rows, corpus_error_rates, resamples=300)
    low, high = intervals["wer_corpus"]
    assert low < pooled < high and high - low < 0.2
    assert bootstrap_ci95(rows, corpus_error_rates, resamples=300) == intervals  # seeded: reproducible
