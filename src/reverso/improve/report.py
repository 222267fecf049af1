"""The improve curve: metrics/improve.json and plots/improve_curve.png, logged to the campaign's parent run.

Per round: the challenger's validation value of ``promote.primary_metric`` with its CI, its paired
differences against base and against the round's champion, the decision, pairs, the couple-margin
(rule-reading) diagnostic of training, and (when the flow timed it) the round's wall time. Plus the
final test-draw comparison of the last champion vs base, when it ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reverso.config import Params
from reverso.improve.campaign import FINAL, PLAN, RoundPaths, finished_rounds, parent_run
from reverso.io import write_json

IMPROVE_JSON = Path("metrics/improve.json")
CURVE_PNG = Path("plots/improve_curve.png")
TIMINGS = Path(".reverso/improve/timings.json")  # per-stage seconds, written by the flow as it runs


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def round_row(params: Params, k: int, workspace: Path, timings: dict[str, Any]) -> dict[str, Any]:
    paths = RoundPaths(k)
    metric = params.promote.primary_metric
    decision = _load(workspace / paths.decision)
    evaluated = _load(workspace / paths.eval_dir / "metrics.json")
    ci = evaluated.get("ci", {})
    paired = evaluated.get("paired", {})
    pairs = _load(workspace / paths.metrics / "pairs.json").get(params.train.pair_set, {})
    trained = _load(workspace / paths.metrics / "train.json")
    collected = _load(workspace / paths.metrics / "collect.json")
    champion = _load(workspace / paths.champion_json)
    stage_seconds = timings.get(str(k), {})
    return {
        "round": k, "collect_seed": champion.get("collect_seed"), "champion_before": decision.get("champion_before"),
        "challenger_version": decision.get("challenger_version"), "decision": decision.get("decision"),
        "champion_after": decision.get("champion_after"), "reason": decision.get("reason"),
        "min_delta": decision.get("min_delta"), "reference": champion.get("reference"),
        "validation": {"challenger": ci.get("policy", {}).get(metric), "base": ci.get("base", {}).get(metric),
                       "champion": ci.get("champion", {}).get(metric),
                       "vs_base": paired.get("policy-base", {}).get(metric),
                       "vs_champion": paired.get("policy-champion", {}).get(metric)},
        "responses": collected.get("responses"), "truncation_rate": collected.get("truncation_rate"),
        "pairs": {"train": pairs.get("train"), "eval": pairs.get("eval")},
        "train_steps": trained.get("steps"), "couple_margin": (trained.get("rule_reading") or {}).get("after"),
        "wall_s": round(sum(stage_seconds.values()), 1) if stage_seconds else None,
        "stage_wall_s": stage_seconds or None,
    }


def build(params: Params, workspace: Path) -> dict[str, Any]:
    plan = yaml.safe_load((workspace / PLAN).read_text(encoding="utf-8"))
    last = min(int(plan["target"]), finished_rounds(workspace))
    timings = _load(workspace / TIMINGS)
    rounds = [round_row(params, k, workspace, timings) for k in range(1, last + 1)]
    final = _load(workspace / FINAL)
    return {"metric": params.promote.primary_metric, "split": "validation",
            "validation_seed": params.improve.validation_seed, "reference": params.improve.reference,
            "rounds": rounds, "promoted_rounds": [r["round"] for r in rounds if r["decision"] == "promoted"],
            "champion": rounds[-1]["champion_after"] if rounds else None,
            "final_test": {k: final[k] for k in ("champion_version", "after_round", "seed", "skipped", "suite_sizes")
                           if k in final} | ({"vs_base": final["paired"].get(params.promote.primary_metric),
                                              "paired": final["paired"]} if final.get("paired") else {})}


def plot_curve(report: dict[str, Any], png: Path) -> None:
    """Validation metric per round: challenger (CI bars; filled = promoted), champion and base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for who, colour, offset in (("challenger", "tab:blue", 0.0), ("champion", "tab:green", 0.12),
                                ("base", "tab:gray", -0.12)):
        points = [(r["round"] + offset, r["validation"][who], r["decision"]) for r in report["rounds"]
                  if r["validation"].get(who) and r["validation"][who].get("mean") is not None]
        for x, ci, decision in points:
            low, high = ci.get("ci_low"), ci.get("ci_high")
            # a percentile interval may sit (by rounding) a hair off its mean: bars never go negative
            err = ([[max(0.0, ci["mean"] - low)], [max(0.0, high - ci["mean"])]]
                   if low is not None and high is not None else None)
            filled = who != "challenger" or decision == "promoted"
            ax.errorbar([x], [ci["mean"]], yerr=err, fmt="o", color=colour, capsize=4,
                        markerfacecolor=colour if filled else "white")
        if points:
            ax.plot([p[0] for p in points], [p[1]["mean"] for p in points], color=colour, alpha=0.5, label=who)
    ax.set_xlabel("round (filled challenger = promoted)")
    ax.set_ylabel(f"{report['metric']} (validation)")
    ax.set_xticks([r["round"] for r in report["rounds"]] or [1])
    ax.set_title("improve: validation metric per round, 95% CI")
    ax.legend(loc="best")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def write_report(params: Params, workspace: Path) -> dict[str, Any]:
    """Stage report: metrics/improve.json, plots/improve_curve.png, and both on the campaign's parent run."""
    from reverso import registry as reg

    report = build(params, workspace)
    report["parent_run_id"] = parent_run(params, workspace)
    write_json(workspace / IMPROVE_JSON, report)
    plot_curve(report, workspace / CURVE_PNG)
    reg.with_retries(lambda: _log(report, workspace), "improve report logging")
    return report


def _log(report: dict[str, Any], workspace: Path) -> None:
    import mlflow

    flow_run = _load(workspace / ".reverso/flow-run.json")  # the Prefect flow run driving this campaign now
    with mlflow.start_run(run_id=report["parent_run_id"]):
        if flow_run.get("id"):
            mlflow.set_tags({"prefect.flow_run_id": flow_run["id"], "prefect.flow_run_name": flow_run.get("name", "")})
        for row in report["rounds"]:
            for who, ci in row["validation"].items():
                if ci and ci.get("mean") is not None:
                    mlflow.log_metric(f"validation.{who}.mean", float(ci["mean"]), step=row["round"])
            mlflow.log_metric("promoted", float(row["decision"] == "promoted"), step=row["round"])
        final = report["final_test"].get("vs_base")
        if final:
            mlflow.log_metrics({f"test.champion_minus_base.{k}": float(final[k]) for k in ("mean", "ci_low", "ci_high")
                                if final.get(k) is not None})
        mlflow.log_artifact(str(workspace / IMPROVE_JSON), artifact_path="improve")
        mlflow.log_artifact(str(workspace / CURVE_PNG), artifact_path="improve")
