"""The study's report: per-arm means with 95 % CIs and paired differences on the same prompts.

An arm's score on a suite is its headline metric averaged over seeds. CIs come from one bootstrap
over the suite's units (prompts or sessions) with the evaluation's own statistics
(``reverso.evaluate.intervals``): every model is scored on the same resampled units, so a difference
between arms is paired, and seeds are averaged inside each resample. Numbers are in percentage points.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from reverso.evaluate.intervals import ROWS, suite_kind
from reverso.evaluate.metrics import HEADLINE, TurnScore, not_scored, per_constraint
from reverso.evaluate.stats import percentile_interval, resample_weights
from reverso.io import write_json

# Paired differences beyond every arm minus base (reported when both arms ran).
NAMED_DIFFERENCES = {"rpo_minus_dpo": ("rpo", "dpo"), "rpo_minus_rpo_no_margin": ("rpo", "rpo_no_margin")}


def differences_for(arms: list[str]) -> dict[str, tuple[str, str]]:
    """Every arm minus base, then the named comparisons whose arms both ran."""
    found = {f"{arm}_minus_base": (arm, "base") for arm in arms if arm != "base"}
    return found | {key: pair for key, pair in NAMED_DIFFERENCES.items() if set(pair) <= set(arms)}


def turn_scores(raw: list[list[dict[str, Any]]]) -> list[list[TurnScore]]:
    return [[TurnScore(tuple(t["ids"]), tuple(t["strict"]), tuple(t["loose"]), tuple(t.get("unscored", ())),
                       int(t.get("judge_errors", 0))) for t in session] for session in raw]


def serialise(scores: list[list[TurnScore]]) -> list[list[dict[str, Any]]]:
    return [[{"ids": list(t.constraint_ids), "strict": list(t.strict), "loose": list(t.loose),
              "unscored": list(t.unscored), "judge_errors": t.judge_errors} for t in session] for session in scores]


def headline_draws(suite: str, scores: list[list[TurnScore]], weights: np.ndarray) -> np.ndarray | None:
    """The suite's headline metric under each row of ``weights`` (None when the suite is not scored)."""
    if not scores or not_scored([t for s in scores for t in s if t.constraint_ids]) is not None:
        return None
    kind = suite_kind(suite)
    rows, statistics = ROWS[kind](scores)
    return 100 * statistics[HEADLINE[kind].split(".", 1)[1]](weights, rows)


def arm_models(evals: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Arm -> the evaluated model names of its seeds (``base`` is its own arm with one model)."""
    arms: dict[str, list[str]] = defaultdict(list)
    for name in sorted(evals):
        arms["base" if name == "base" else name.rsplit("-", 1)[0]].append(name)
    return dict(arms)


def bootstrap_suite(suite: str, evals: dict[str, dict[str, Any]], arms: dict[str, list[str]], resamples: int,
                    confidence: float, seed: int) -> dict[str, Any]:
    """Point estimates and CIs per arm, and paired differences, for one suite (in points)."""
    scores = {name: turn_scores(record["scores"][suite]) for name, record in evals.items()}
    units = len(next(iter(scores.values())))
    ones = np.ones((1, units))
    weights = resample_weights(units, resamples, seed)
    point: dict[str, float | None] = {}
    draws: dict[str, np.ndarray] = {}
    seeds: dict[str, list[float | None]] = {}
    for arm, models in arms.items():
        singles = [headline_draws(suite, scores[m], ones) for m in models]
        seeds[arm] = [None if v is None else float(v[0]) for v in singles]
        resampled = [headline_draws(suite, scores[m], weights) for m in models]
        if units and all(v is not None for v in resampled):
            point[arm] = float(np.mean([v[0] for v in singles]))  # type: ignore[index]
            draws[arm] = np.mean(resampled, axis=0)
        else:
            point[arm] = None
    per_arm = {}
    for arm in arms:
        entry: dict[str, Any] = {"mean": point[arm], "n": units, "seeds": seeds[arm]}
        if arm in draws:
            entry["ci_low"], entry["ci_high"] = percentile_interval(draws[arm], confidence)
        per_arm[arm] = entry
    differences = {}
    for key, (a, b) in differences_for(list(arms)).items():
        if a in draws and b in draws:
            low, high = percentile_interval(draws[a] - draws[b], confidence)
            differences[key] = {"mean": point[a] - point[b], "ci_low": low, "ci_high": high, "n": units}  # type: ignore[operator]
    return {"arms": per_arm, "differences": differences}


def build_report(evals: dict[str, dict[str, Any]], trains: dict[str, dict[str, Any]], resamples: int,
                 confidence: float, seed: int = 0) -> dict[str, Any]:
    """metrics/study.json's content (without params and wall time)."""
    digests = {record["suites_digest"] for record in evals.values()}
    if len(digests) != 1:
        raise ValueError(f"study evaluations used different suites ({sorted(digests)}): rerun study-evaluate")
    arms = arm_models(evals)
    suites = sorted(next(iter(evals.values()))["scores"])
    by_suite = {suite: bootstrap_suite(suite, evals, arms, resamples, confidence, seed) for suite in suites}
    per_model = {name: {suite: by_suite[suite]["arms"][arm]["seeds"][models.index(name)] for suite in suites}
                 for arm, models in arms.items() for name in models}
    constraint_rates = {arm: per_constraint([turn_scores(evals[m]["scores"][s]) for m in models for s in suites])
                        for arm, models in arms.items()}
    return {
        "arms": per_model,
        "summary": {suite: data["arms"] for suite, data in by_suite.items()},
        "differences": {key: {suite: data["differences"][key] for suite, data in by_suite.items()
                              if key in data["differences"]} for key in differences_for(list(arm_models(evals)))},
        "per_constraint": constraint_rates,
        "train": {name: {k: t.get(k) for k in ("train_loss", "steps", "train_pairs", "held_out", "rule_reading",
                                                 "regime", "wall_s")}
                  for name, t in trains.items()},
        "suite_sizes": next(iter(evals.values()))["suite_sizes"],
        "confidence": confidence, "bootstrap": resamples,
    }


def _fmt(entry: dict[str, Any] | None, signed: bool = False) -> str:
    """``mean [low, high]`` in points; differences carry a sign."""
    if not entry or entry.get("mean") is None:
        return "not scored"
    spec = "+.1f" if signed else ".1f"
    if entry.get("ci_low") is None:
        return format(entry["mean"], spec)
    return f"{entry['mean']:{spec}} [{entry['ci_low']:{spec}}, {entry['ci_high']:{spec}}]"


def render_markdown(report: dict[str, Any]) -> str:
    suites = list(report["summary"])
    arms = list(next(iter(report["summary"].values())))
    head = "| arm | " + " | ".join(f"{s} (n={report['suite_sizes'].get(s, '?')})" for s in suites) + " |"
    lines = [f"Headline metric per suite, mean over seeds, {report['confidence']:.0%} bootstrap CI "
             f"({report['bootstrap']} resamples over prompts/sessions), in points.", "", head,
             "|" + "---|" * (len(suites) + 1)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(_fmt(report["summary"][s].get(arm)) for s in suites) + " |")
    lines += ["", "Paired differences (same prompts, same run):", "",
              "| difference | " + " | ".join(suites) + " |", "|" + "---|" * (len(suites) + 1)]
    for key, per_suite in report["differences"].items():
        lines.append(f"| {key} | " + " | ".join(_fmt(per_suite.get(s), signed=True) for s in suites) + " |")
    lines += ["", "Per seed (points): " + "; ".join(
        f"{name}: " + ", ".join(f"{s} {v:.1f}" if v is not None else f"{s} n/a" for s, v in vals.items())
        for name, vals in sorted(report["arms"].items()))]
    return "\n".join(lines) + "\n"


def plot_per_constraint(report: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = report["per_constraint"]
    arms = [a for a in ("base", "dpo", "rpo", "rpo_no_margin") if a in rates]
    types = sorted({t for arm in arms for t in rates[arm]})
    fig, axis = plt.subplots(figsize=(9, max(3, 0.28 * len(types) * max(len(arms), 1) / 2)))
    height = 0.8 / max(len(arms), 1)
    for k, arm in enumerate(arms):
        axis.barh([i + k * height for i in range(len(types))], [100 * rates[arm].get(t, 0) for t in types],
                  height=height, label=arm)
    axis.set_yticks([i + 0.4 - height / 2 for i in range(len(types))], types, fontsize=7)
    axis.set_xlabel("strict pass rate (%) over all study suites")
    axis.set_title("Per-constraint-type pass rate: base vs DPO vs RPO (seeds pooled)")
    axis.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def write_outputs(report: dict[str, Any], study_json: Path, report_dir: Path) -> None:
    write_json(study_json, report)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "study.md").write_text(render_markdown(report), encoding="utf-8")
    plot_per_constraint(report, report_dir / "study_per_constraint.png")
