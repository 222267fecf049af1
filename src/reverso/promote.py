"""promote: the champion/challenger gate. ``@champion`` moves only on evidence.

Evidence is what ``evaluate`` measured in one run: paired bootstrap CIs of (challenger - base) and,
when a champion existed, (challenger - champion) on the same prompts (the ``eval.evidence`` tag on
the challenger version). The challenger is promoted when

- the lower CI bound of both differences on ``promote.primary_metric`` is above ``min_delta``, and
- no other suite's headline metric plausibly regresses by more than ``max_regression``: the upper
  CI bound of the drop (reference - challenger) stays at or below it, versus base and champion.

Evidence paired against a champion that no longer holds the alias is refused (re-run evaluate).
The alias move is a compare-and-set: if ``@champion`` moved while deciding, the gate re-decides
against the new holder instead of overwriting it. Decision, CIs and sample sizes go to the version's
tags, the challenger's MLflow run and ``metrics/promotion.json``. ``dry_run`` changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from reverso import registry as reg
from reverso.config_base import _Section
from reverso.registry import RegistryParams
from reverso.io import write_json


class PromoteParams(_Section):
    """``promote``: champion/challenger gate on paired bootstrap CIs from one evaluate run."""

    # Multi-IF-style average over turns, as the paper reports; any suite metric with a CI works.
    primary_metric: str = "multi_if.average"
    # The lower CI bound of (challenger - base) and of (challenger - champion) must exceed this.
    min_delta: float = Field(0.0, ge=0.0)
    # No other suite's headline metric may plausibly drop by more: the upper CI bound of the drop
    # (reference - challenger) versus base and champion must stay at or below this.
    max_regression: float = Field(0.05, ge=0.0)

ATTEMPTS = 3  # compare-and-set rounds before giving up on a champion that keeps moving


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    challenger_version: str | None = None
    champion_version: str | None = None  # @champion when the decision was taken
    evaluated_against: str | None = None  # the champion the evidence was paired against
    vs_base: dict[str, Any] | None = None  # {mean, ci_low, ci_high, n, confidence}
    vs_champion: dict[str, Any] | None = None
    regressions: list[str] = field(default_factory=list)
    suite_sizes: dict[str, int] = field(default_factory=dict)
    min_delta: float = 0.0
    max_regression: float = 0.0


def _evidence(version: Any) -> dict[str, Any] | None:
    raw = (version.tags or {}).get("eval.evidence") if version is not None else None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _ci_text(diff: dict[str, Any]) -> str:
    level = f"{100 * diff.get('confidence', 0.95):.0f}% CI"
    return f"{diff['mean']:+.4f} ({level} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}], n={diff['n']})"


def headline_metrics(evidence: dict[str, Any]) -> list[str]:
    from reverso.evaluate.scoring import headline_keys

    return headline_keys(list(evidence.get("suite_sizes") or {}))


def regressions(evidence: dict[str, Any], primary: str, limit: float) -> list[str]:
    """Other suites' headline metrics whose drop may exceed ``limit`` (upper CI bound of the drop)."""
    found = []
    for label, diffs in (evidence.get("paired") or {}).items():
        reference = label.split("-", 1)[1]
        for metric in headline_metrics(evidence):
            diff = diffs.get(metric)
            if metric == primary or not diff or diff.get("ci_low") is None:
                continue
            worst_drop = -diff["ci_low"]
            if worst_drop > limit:
                found.append(f"{metric} vs {reference}: drop up to {worst_drop:.4f} > {limit} ({_ci_text(diff)})")
    return found


def decide(params: PromoteParams, model_name: str, version: str | None = None) -> Decision:
    """The gate's decision for ``@challenger``, or for registered ``version`` (the improve loop's round)."""
    challenger = (reg.alias_version(model_name, reg.CHALLENGER) if version is None
                  else reg.with_retries(lambda: reg.client().get_model_version(model_name, version), f"version {version}"))
    champion = reg.version_str(reg.alias_version(model_name, reg.CHAMPION))
    metric, evidence = params.primary_metric, _evidence(challenger)
    paired = (evidence or {}).get("paired") or {}
    common: dict[str, Any] = {
        "metric": metric, "challenger_version": reg.version_str(challenger), "champion_version": champion,
        "evaluated_against": (evidence or {}).get("champion_version"),
        "vs_base": (paired.get("policy-base") or {}).get(metric),
        "vs_champion": (paired.get("policy-champion") or {}).get(metric),
        "suite_sizes": (evidence or {}).get("suite_sizes") or {},
        "min_delta": params.min_delta, "max_regression": params.max_regression}
    version = common["challenger_version"]
    if challenger is None:
        return Decision(False, f"no version of {model_name!r} has alias @{reg.CHALLENGER}", **common)
    if evidence is None:
        return Decision(False, f"challenger v{version} has no paired evaluation evidence: run evaluate", **common)
    if champion == version:
        return Decision(False, f"v{version} is already @{reg.CHAMPION}", **common)
    if common["evaluated_against"] != champion:
        against = common["evaluated_against"]
        return Decision(False, f"@{reg.CHAMPION} is {'v' + champion if champion else 'unset'} but v{version} was "
                               f"evaluated against {'v' + against if against else 'no champion'}: re-run evaluate "
                               "so both answer the same prompts in one run", **common)
    checks = [("base", common["vs_base"])] + ([(f"champion v{champion}", common["vs_champion"])] if champion else [])
    for reference, diff in checks:
        if not diff or diff.get("ci_low") is None:
            return Decision(False, f"{metric} has no paired CI versus {reference} (not scored, or not a suite "
                                   "metric): see metrics/eval.json", **common)
        if diff["ci_low"] <= params.min_delta:
            return Decision(False, f"{metric} vs {reference}: {_ci_text(diff)}; the lower bound is not above "
                                   f"min_delta {params.min_delta}", **common)
    dropped = regressions(evidence, metric, params.max_regression)
    if dropped:
        return Decision(False, "regresses another suite: " + "; ".join(dropped), **common, regressions=dropped)
    won = "; ".join(f"vs {reference} {_ci_text(diff)}" for reference, diff in checks if diff)
    return Decision(True, f"{metric} {won}: lower bound above min_delta {params.min_delta}", **common)


def _record(registry: RegistryParams, decision: Decision) -> None:
    """Tags on the challenger version and tags/metrics on its training run."""
    payload = json.dumps({k: v for k, v in asdict(decision).items() if k != "reason"}, sort_keys=True)
    reg.tag_version(registry.model_name, decision.challenger_version, {
        "promotion.decision": "promoted" if decision.promote else "rejected",
        "promotion.reason": decision.reason, "promotion.evidence": payload})
    run_id = reg.client().get_model_version(registry.model_name, decision.challenger_version).run_id
    if not run_id:
        return
    metrics = {f"promotion.{ref}.{part}": diff[part] for ref, diff in (("vs_base", decision.vs_base),
               ("vs_champion", decision.vs_champion)) if diff for part in ("mean", "ci_low", "ci_high", "n")
               if diff.get(part) is not None}
    metrics["promotion.promoted"] = float(decision.promote)
    client = reg.client()
    for key, value in metrics.items():
        reg.with_retries(lambda k=key, v=value: client.log_metric(run_id, k, float(v)), f"metric {key}")
    reg.with_retries(lambda: client.set_tag(run_id, "promotion.reason", decision.reason[:5000]), "promotion tag")


def promote(
    params: PromoteParams, registry: RegistryParams, out: str | Path | None = None,
    dry_run: bool = False, workspace: str | Path = ".", version: str | None = None,
) -> Decision:
    reg.setup(registry.experiment, workspace)
    attempts = 0
    for attempts in range(1, ATTEMPTS + 1):
        decision = decide(params, registry.model_name, version)
        if dry_run or decision.challenger_version is None:
            break
        if not decision.promote:
            _record(registry, decision)
            break
        # compare-and-set: only while @champion is still the one the evidence was paired against
        if reg.set_alias_if(registry.model_name, reg.CHAMPION, decision.challenger_version,
                            expected=decision.champion_version):
            _record(registry, decision)
            break
    else:
        decision = Decision(False, f"@{reg.CHAMPION} kept moving during {ATTEMPTS} attempts; re-run evaluate",
                            decision.metric, decision.challenger_version, decision.champion_version)
        _record(registry, decision)
    if out is not None:
        write_json(out, {**asdict(decision), "dry_run": dry_run, "attempts": attempts})
    return decision
