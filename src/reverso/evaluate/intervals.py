"""Per-unit rows for each suite's metrics, so the bootstrap (``stats.py``) resamples whole units.

The unit is what the benchmark counts independently: an IFEval prompt, a Multi-IF or SysBench
session (turns of one session share a history, so they are resampled together). Each suite maps its
scores to one row per unit and a statistic per metric whose value on the full sample equals the
metric in ``metrics.py`` (tested); resampling rows with shared weights keeps every metric and every
model on the same draw.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from reverso.evaluate.metrics import TurnScore, not_scored, stable_run
from reverso.evaluate.stats import Statistic, bootstrap_ci, paired_difference, ratio_of_sums, weighted_mean

UNITS = {"ifeval": "prompts", "multi_if": "sessions", "sysbench": "sessions"}


def _counts(turn: TurnScore) -> list[float]:
    """prompt strict, prompt loose, passed strict, passed loose, constraints, present."""
    return [float(all(turn.strict)), float(all(turn.loose)), float(sum(turn.strict)), float(sum(turn.loose)),
            float(len(turn.strict)), 1.0]


def _four(offset: int) -> dict[str, Statistic]:
    return {"prompt_strict": ratio_of_sums(offset, offset + 5), "prompt_loose": ratio_of_sums(offset + 1, offset + 5),
            "instruction_strict": ratio_of_sums(offset + 2, offset + 4),
            "instruction_loose": ratio_of_sums(offset + 3, offset + 4)}


def ifeval_rows(scores: list[list[TurnScore]]) -> tuple[np.ndarray, dict[str, Statistic]]:
    rows = [_counts(s[0]) for s in scores if s and s[0].constraint_ids]
    return np.array(rows, dtype=float).reshape(-1, 6), _four(0)


def multi_if_rows(scores: list[list[TurnScore]]) -> tuple[np.ndarray, dict[str, Statistic]]:
    turns = max((len(s) for s in scores), default=0)
    rows = [[value for t in range(turns)
             for value in (_counts(s[t]) if len(s) > t and s[t].constraint_ids else [0.0] * 6)] for s in scores]
    per_turn = [_four(6 * t) for t in range(turns)]

    def average(weights: np.ndarray, table: np.ndarray) -> np.ndarray:
        means = [np.mean([stat(weights, table) for stat in four.values()], axis=0) for four in per_turn]
        with warnings.catch_warnings():  # a resample may miss a turn entirely: NaN, left out of the mean
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.array(means), axis=0)

    return np.array(rows, dtype=float).reshape(len(scores), 6 * turns), {"average": average}


def sysbench_rows(scores: list[list[TurnScore]]) -> tuple[np.ndarray, dict[str, Statistic]]:
    rows = []
    for session in (s for s in scores if s):
        constrained = [t for t in session if t.constraint_ids]
        rows.append([sum(sum(t.strict) / len(t.strict) for t in constrained), float(len(constrained)),
                     float(sum(all(t.strict) for t in constrained)), stable_run(session) / len(session),
                     float(stable_run(session) == len(session))])
    return np.array(rows, dtype=float).reshape(-1, 5), {
        "csr": ratio_of_sums(0, 1), "isr": ratio_of_sums(2, 1), "ssr": weighted_mean(3),
        "session_all_pass": weighted_mean(4)}


ROWS = {"ifeval": ifeval_rows, "multi_if": multi_if_rows, "sysbench": sysbench_rows}


def suite_kind(name: str) -> str:
    """``official_ifbench`` -> ``ifeval``: the metric family a suite is scored with (``ood`` too)."""
    kind = name.removeprefix("official_")
    return {"ifbench": "ifeval", "ood": "ifeval"}.get(kind, kind)


def _scored(scores: list[list[TurnScore]]) -> bool:
    return not_scored([t for s in scores for t in s if t.constraint_ids]) is None


def intervals(name: str, scores: list[list[TurnScore]], resamples: int, confidence: float,
              seed: int) -> dict[str, Any]:
    """``{"<suite>.<metric>": {mean, ci_low, ci_high, n}}`` for every top-level metric of one suite."""
    if not scores or not _scored(scores):
        return {}
    rows, statistics = ROWS[suite_kind(name)](scores)
    return {f"{name}.{metric}": bootstrap_ci(rows, statistic=stat, resamples=resamples, confidence=confidence,
                                             seed=seed) for metric, stat in statistics.items()}


def paired(name: str, scores_a: list[list[TurnScore]], scores_b: list[list[TurnScore]], resamples: int,
           confidence: float, seed: int) -> dict[str, Any]:
    """Paired differences a - b on the same units, for every top-level metric of one suite."""
    if not scores_a or not _scored(scores_a) or not _scored(scores_b):
        return {}
    rows_fn = ROWS[suite_kind(name)]
    (rows_a, statistics), (rows_b, _) = rows_fn(scores_a), rows_fn(scores_b)
    return {f"{name}.{metric}": paired_difference(rows_a, rows_b, statistic=stat, resamples=resamples,
                                                  confidence=confidence, seed=seed)
            for metric, stat in statistics.items()}

