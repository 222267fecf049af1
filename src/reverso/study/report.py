"""The study's report: per-arm means with 95 % CIs and paired differences on the same prompts.

An arm's score on a suite is its headline metric averaged over replicates. CIs come from a
hierarchical bootstrap with the evaluation's own statistics (``reverso.evaluate.intervals``): each
resample draws replicates with replacement (a replicate is a training seed *and* a data draw; the
same replicate indices for every arm, since replicate k of each arm shares its data) and prompt
units clustered by their source query (two prompts built on one query text move together); every
model is scored on the same resampled units, so a difference between arms is paired. Numbers are in
percentage points. One comparison is primary (``study.primary_comparison`` on ``study.primary_suite``,
named before the run); everything else is secondary. The A/A model (``aa``, the base with weights
perturbed at ``study.aa_scale``) gives the noise floor: what greedy decoding alone moves.
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

CHAMPION = "champion"  # the registry's @champion when the study started (answers the suites in the report step)
AA = "aa"  # the A/A model (study/replicate.py): the base, perturbed; its difference from base = noise floor
# Paired differences beyond every arm minus base (reported when both arms ran).
NAMED_DIFFERENCES = {"rpo_minus_dpo": ("rpo", "dpo"), "rpo_minus_rpo_no_margin": ("rpo", "rpo_no_margin")}


def differences_for(arms: list[str], primary: tuple[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Every arm minus base, the named comparisons whose arms both ran, and every pair of trained arms
    (so a recipe's primary comparison is always computed)."""
    found = {f"{arm}_minus_base": (arm, "base") for arm in arms if arm != "base"}
    found |= {key: pair for key, pair in NAMED_DIFFERENCES.items() if set(pair) <= set(arms)}
    trained = [a for a in arms if a not in ("base", AA, CHAMPION)]
    if CHAMPION in arms:
        found |= {f"{a}_minus_{CHAMPION}": (a, CHAMPION) for a in trained}
    for i, a in enumerate(trained):
        for b in trained[i + 1:]:
            if f"{b}_minus_{a}" not in found:
                found.setdefault(f"{a}_minus_{b}", (a, b))
    if primary is not None and f"{primary[0]}_minus_{primary[1]}" not in found and set(primary) <= set(arms):
        found[f"{primary[0]}_minus_{primary[1]}"] = primary
    return found


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
    """Arm -> the evaluated model names of its replicates, in seed order (``base`` and ``aa`` are arms of
    one model)."""
    arms: dict[str, list[str]] = defaultdict(list)
    for name in sorted(evals, key=lambda n: (n.rsplit("-", 1)[0], int(n.rsplit("-", 1)[1]) if "-" in n else 0)):
        arms[name.rsplit("-", 1)[0] if "-" in name else name].append(name)
    return dict(arms)


def cluster_weights(clusters: list[str], resamples: int, seed: int) -> np.ndarray:
    """``resamples`` x units draw counts where units of one cluster (source query) are drawn together."""
    keys = sorted(set(clusters))
    index = np.array([keys.index(c) for c in clusters], dtype=int)
    drawn = resample_weights(len(keys), resamples, seed)  # resamples x clusters
    return drawn[:, index]


def replicate_draws(arm_draws: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Mean over the picked replicates per resample: ``arm_draws`` replicates x resamples, ``picks``
    resamples x k replicate positions (taken modulo this arm's replicate count)."""
    rows = picks % arm_draws.shape[0]
    return arm_draws[rows, np.arange(picks.shape[0])[:, None]].mean(axis=1)


def bootstrap_suite(suite: str, evals: dict[str, dict[str, Any]], arms: dict[str, list[str]], resamples: int,
                    confidence: float, seed: int, primary: tuple[str, str] | None = None) -> dict[str, Any]:
    """Point estimates and hierarchical CIs per arm, and paired differences, for one suite (in points)."""
    scores = {name: turn_scores(record["scores"][suite]) for name, record in evals.items()}
    units = len(next(iter(scores.values())))
    clusters = next(iter(evals.values())).get("clusters", {}).get(suite) or [str(i) for i in range(units)]
    ones = np.ones((1, units))
    weights = cluster_weights(clusters, resamples, seed) if units else np.ones((resamples, 0))
    replicates = max(len(models) for models in arms.values())
    picks = np.random.default_rng(seed + 1).integers(0, replicates, size=(resamples, replicates))
    point: dict[str, float | None] = {}
    draws: dict[str, np.ndarray] = {}
    seeds: dict[str, list[float | None]] = {}
    for arm, models in arms.items():
        singles = [headline_draws(suite, scores[m], ones) for m in models]
        seeds[arm] = [None if v is None else float(v[0]) for v in singles]
        resampled = [headline_draws(suite, scores[m], weights) for m in models]
        if units and all(v is not None for v in resampled):
            point[arm] = float(np.mean([v[0] for v in singles]))  # type: ignore[index]
            draws[arm] = replicate_draws(np.array(resampled), picks)
        else:
            point[arm] = None
    per_arm = {}
    for arm in arms:
        entry: dict[str, Any] = {"mean": point[arm], "n": units, "clusters": len(set(clusters)),
                                 "replicates": len(arms[arm]), "seeds": seeds[arm]}
        if arm in draws:
            entry["ci_low"], entry["ci_high"] = percentile_interval(draws[arm], confidence)
        per_arm[arm] = entry
    differences = {}
    for key, (a, b) in differences_for(list(arms), primary).items():
        if a in draws and b in draws:
            low, high = percentile_interval(draws[a] - draws[b], confidence)
            differences[key] = {"mean": point[a] - point[b], "ci_low": low, "ci_high": high, "n": units,  # type: ignore[operator]
                                "clusters": len(set(clusters)), "replicates": max(len(arms[a]), len(arms[b]))}
    return {"arms": per_arm, "differences": differences}


def answers_differ(a: dict[str, Any], b: dict[str, Any]) -> dict[str, int]:
    """Turns whose greedy answer text differs between two evaluation records, and turns compared."""
    pairs = [(x, y) for suite in a["outputs"] for sa, sb in zip(a["outputs"][suite], b["outputs"][suite], strict=True)
             for x, y in zip(sa, sb, strict=True)]
    return {"differ": sum(x != y for x, y in pairs), "turns": len(pairs)}


def build_report(evals: dict[str, dict[str, Any]], trains: dict[str, dict[str, Any]], resamples: int,
                 confidence: float, seed: int = 0, primary: tuple[str, str] = ("rpo", "dpo"),
                 primary_suite: str = "multi_if") -> dict[str, Any]:
    """metrics/study.json's content (without params and wall time)."""
    digests = {record["suites_digest"] for record in evals.values()}
    if len(digests) != 1:
        raise ValueError(f"study evaluations used different suites ({sorted(digests)}): rerun study-evaluate")
    arms = arm_models(evals)
    suites = sorted(next(iter(evals.values()))["scores"])
    by_suite = {suite: bootstrap_suite(suite, evals, arms, resamples, confidence, seed, primary) for suite in suites}
    per_model = {name: {suite: by_suite[suite]["arms"][arm]["seeds"][models.index(name)] for suite in suites}
                 for arm, models in arms.items() for name in models}
    constraint_rates = {arm: per_constraint([turn_scores(evals[m]["scores"][s]) for m in models for s in suites])
                        for arm, models in arms.items() if arm not in (AA, CHAMPION)}
    differences = {key: {suite: data["differences"][key] for suite, data in by_suite.items()
                         if key in data["differences"]} for key in differences_for(list(arms), primary)}
    key = f"{primary[0]}_minus_{primary[1]}"
    found = differences.get(key, {}).get(primary_suite)
    report = {
        "primary": {"comparison": key, "suite": primary_suite, **(found or {"mean": None}),
                    "halfwidth": None if not found or found.get("ci_low") is None
                    else round((found["ci_high"] - found["ci_low"]) / 2, 3)},
        "arms": per_model,
        "summary": {suite: data["arms"] for suite, data in by_suite.items()},
        "differences": differences,
        "per_constraint": constraint_rates,
        "truncation": {name: record["truncation"]["all"] for name, record in evals.items() if "truncation" in record},
        "train": {name: {k: t.get(k) for k in ("train_loss", "steps", "train_pairs", "held_out", "rule_reading",
                                                 "regime", "data", "wall_s")}
                  for name, t in trains.items()},
        "suite_sizes": next(iter(evals.values()))["suite_sizes"],
        "confidence": confidence, "bootstrap": resamples,
        "bootstrap_method": "hierarchical: replicates (seed + data draw) x prompt units clustered by source query",
    }
    if AA in evals and "base" in evals:
        report["noise_floor"] = {"model": AA, "perturbation": evals[AA].get("perturbation"),
                                 "answers": answers_differ(evals["base"], evals[AA]),
                                 "difference": differences.get(f"{AA}_minus_base", {})}
    return report


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
    primary = report.get("primary") or {}
    lines = []
    if primary:
        lines += [f"**Primary comparison (named before the run): {primary['comparison']} on {primary['suite']}: "
                  f"{_fmt(primary, signed=True)} points** (half-width {primary.get('halfwidth')}, "
                  f"{primary.get('replicates', '?')} replicates x {primary.get('n', '?')} units in "
                  f"{primary.get('clusters', '?')} query clusters). Everything else below is secondary.", ""]
    floor = report.get("noise_floor")
    if floor:
        per_suite = ", ".join(f"{s} {_fmt(e, signed=True)}" for s, e in floor["difference"].items())
        lines += [f"A/A noise floor (base vs base with weights x (1 + {floor['perturbation'] and floor['perturbation'].get('scale')}"
                  f" N(0,1))): answers differ on {floor['answers']['differ']}/{floor['answers']['turns']} turns; "
                  f"difference {per_suite}.", ""]
    head = "| arm | " + " | ".join(f"{s} (n={report['suite_sizes'].get(s, '?')})" for s in suites) + " |"
    lines += [f"Headline metric per suite, mean over replicates, {report['confidence']:.0%} CI from a "
              f"{report.get('bootstrap_method', 'bootstrap')} ({report['bootstrap']} resamples), in points.", "",
              head, "|" + "---|" * (len(suites) + 1)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(_fmt(report["summary"][s].get(arm)) for s in suites) + " |")
    lines += ["", "Paired differences (same prompts, same run; secondary unless marked primary):", "",
              "| difference | " + " | ".join(suites) + " |", "|" + "---|" * (len(suites) + 1)]
    for key, per_suite in report["differences"].items():
        label = f"**{key} (primary)**" if key == primary.get("comparison") else key
        lines.append(f"| {label} | " + " | ".join(_fmt(per_suite.get(s), signed=True) for s in suites) + " |")
    cut = report.get("truncation") or {}
    if cut:
        lines += ["", "Answers cut at evaluate.max_new_tokens: " + ", ".join(
            f"{name} {100 * t['cut']:.1f} %" for name, t in sorted(cut.items())) + "."]
    lines += ["", "Per replicate (points): " + "; ".join(
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
