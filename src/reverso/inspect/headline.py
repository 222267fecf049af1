"""``metrics/headline.json``: the few numbers ``dvc metrics show`` lists, one flat row under 120 columns.

DVC prints one column per key (sorted by name), so the row holds only what a reader compares between
runs: pairs built, the worst stage's quarantine rate, the truncation rate, the final training loss,
the held-out reward margin, each generated suite's primary metric for the policy, and the promotion
decision. Base values, confidence intervals and per-constraint numbers are detail: they go to
``plots/eval_suites.json`` and ``plots/eval_per_constraint.json`` (``dvc plots show``) and the
inspector's evaluation page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverso.inspect.load import dig, number, read_json

HEADLINE_SUITES = ("ifeval", "multi_if", "sysbench", "ood")  # generated suites; official files stay in the detail


def _rate(part: Any, whole: Any) -> float | None:
    if not isinstance(part, (int, float)) or not isinstance(whole, (int, float)) or whole <= 0:
        return None
    return part / whole


def quarantine_rates(collect: dict[str, Any], reverse: dict[str, Any], pairs: dict[str, Any]) -> dict[str, float]:
    """Share of input rows quarantined, per stage that reports it."""
    collected = collect.get("input_rows_quarantined")
    rates = {
        "collect": _rate(collected, (collect.get("sessions") or 0) + (collected or 0)),
        "reverse": _rate(reverse.get("quarantined"), reverse.get("responses_in")),
        "pairs": _rate((pairs.get("verdicts_quarantined") or 0) + (pairs.get("filtered_too_long") or 0),
                       pairs.get("verdicts_in")) if "verdicts_in" in pairs else None,
    }
    return {stage: rate for stage, rate in rates.items() if rate is not None}


def truncation_rate(collect: dict[str, Any]) -> float | None:
    if isinstance(collect.get("truncation_rate"), (int, float)):
        return float(collect["truncation_rate"])
    return _rate(collect.get("truncated_responses"), collect.get("responses"))


def headline(metrics_dir: Path, suite_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The flat headline row; keys whose stage did not run are left out (DVC shows "-")."""
    collect, reverse = read_json(metrics_dir / "collect.json"), read_json(metrics_dir / "reverse.json")
    pairs, train = read_json(metrics_dir / "pairs.json"), read_json(metrics_dir / "train.json")
    promotion = read_json(metrics_dir / "promotion.json")
    rates = quarantine_rates(collect, reverse, pairs)
    row: dict[str, Any] = {
        "pairs": dig(pairs, "rpo", "pairs"),
        "quarantine": max(rates.values()) if rates else None,
        "truncated": truncation_rate(collect),
        "loss": number(dig(train, "final", "loss")) if dig(train, "final", "loss") is not None
        else number(train.get("train_loss")),
        "margin": number(dig(train, "held_out", "after", "rewards/margins")),
        "promoted": promotion.get("promote") if isinstance(promotion.get("promote"), bool) else None,
    }
    for suite in suite_rows:
        if suite["suite"] in HEADLINE_SUITES:
            row[suite["suite"]] = suite.get("policy")
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items() if v is not None}


def suites_plot(suite_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per suite: primary metric for base and policy, their CIs and the paired difference."""
    rows = []
    for s in suite_rows:
        row = {"suite": s["suite"], "metric": s["metric"]}
        for key in ("base", "policy", "diff"):
            row[key] = s.get(key)
            row[f"{key}_ci_low"], row[f"{key}_ci_high"] = s.get(f"{key}_ci") or (None, None)
        rows.append(row)
    return {"suites": rows}


def per_constraint_plot(per_constraint: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per constraint type: base and policy pass rates (and CIs) and the change."""
    merged: dict[str, dict[str, Any]] = {}
    for item in per_constraint:
        row = merged.setdefault(item["constraint"], {"constraint": item["constraint"]})
        row[item["model"]] = item["pass_rate"]
        row[f"{item['model']}_ci_low"], row[f"{item['model']}_ci_high"] = item["ci_low"], item["ci_high"]
    for row in merged.values():
        if row.get("base") is not None and row.get("policy") is not None:
            row["change"] = round(row["policy"] - row["base"], 4)
    return {"per_constraint": list(merged.values())}
