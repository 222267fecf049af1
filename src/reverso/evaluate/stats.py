"""Bootstrap confidence intervals and paired differences over evaluation units (prompts or sessions).

One resample draws units with replacement, expressed as a weight per unit (how often it was drawn),
so any statistic that is a function of per-unit rows — a mean, a ratio of sums (pooled instruction
accuracy), an average of per-turn ratios (Multi-IF) — is computed for all resamples at once. A paired
difference applies the *same* resamples to both models' rows, so it measures the change on the same
prompts. Intervals are percentile intervals; the same ``seed`` gives the same resamples everywhere.

    bootstrap_ci([1, 0, 1, 1])                       -> {"mean": 0.75, "ci_low": ..., "ci_high": ..., "n": 4}
    paired_difference(policy_rows, base_rows, statistic=ratio_of_sums(0, 1))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# (weights: resamples x units, rows: units x columns) -> one value per resample
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
DEFAULT_RESAMPLES, DEFAULT_CONFIDENCE = 2000, 0.95


def weighted_mean(column: int = 0) -> Statistic:
    """The mean of one column over the drawn units."""
    def statistic(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return (weights @ rows[:, column]) / weights.sum(axis=1)
    return statistic


def ratio_of_sums(numerator: int, denominator: int) -> Statistic:
    """sum(numerator) / sum(denominator) over the drawn units (NaN where the denominator is 0)."""
    def statistic(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        den = weights @ rows[:, denominator]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (weights @ rows[:, numerator]) / np.where(den > 0, den, 1), np.nan)
    return statistic


def _rows(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    rows = np.asarray(values, dtype=float)
    return rows.reshape(-1, 1) if rows.ndim == 1 else rows


def resample_weights(units: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``resamples`` x ``units`` draw counts: each row is one bootstrap sample of the units."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(units, np.full(units, 1.0 / units), size=resamples).astype(float)


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of the finite bootstrap draws ((None, None) when there are none)."""
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _result(point: float, draws: np.ndarray, units: int, confidence: float) -> dict[str, Any]:
    low, high = percentile_interval(draws, confidence)
    return {"mean": None if not np.isfinite(point) else float(point), "ci_low": low, "ci_high": high,
            "n": units, "confidence": confidence}


def bootstrap_ci(values: Sequence[Any] | np.ndarray, *, statistic: Statistic | None = None,
                 resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = 0) -> dict[str, Any]:
    """Point estimate and percentile CI of ``statistic`` over units (rows of ``values``).

    ``mean`` is the statistic on the full sample (the plain mean by default); ``n`` is the number of
    units resampled. With no units every number is None.
    """
    rows = _rows(values)
    units = len(rows)
    if units == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "confidence": confidence}
    statistic = statistic or weighted_mean()
    point = statistic(np.ones((1, units)), rows)[0]
    return _result(point, statistic(resample_weights(units, resamples, seed), rows), units, confidence)


def paired_difference(a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray, *,
                      statistic: Statistic | None = None, resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> dict[str, Any]:
    """statistic(a) - statistic(b) with a CI from resampling the same units for both.

    Row i of ``a`` and row i of ``b`` must be the same unit (prompt or session) answered by two models.
    """
    rows_a, rows_b = _rows(a), _rows(b)
    if rows_a.shape != rows_b.shape:
        raise ValueError(f"paired rows differ in shape: {rows_a.shape} vs {rows_b.shape}; "
                         "both models must be scored on the same units")
    units = len(rows_a)
    if units == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "confidence": confidence}
    statistic = statistic or weighted_mean()
    ones = np.ones((1, units))
    point = statistic(ones, rows_a)[0] - statistic(ones, rows_b)[0]
    weights = resample_weights(units, resamples, seed)
    return _result(point, statistic(weights, rows_a) - statistic(weights, rows_b), units, confidence)


def halfwidth(interval: dict[str, Any]) -> float | None:
    """Half the CI's width, or None when it has no bounds."""
    if interval.get("ci_low") is None or interval.get("ci_high") is None:
        return None
    return (interval["ci_high"] - interval["ci_low"]) / 2
