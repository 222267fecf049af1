"""Promotion from a study: move ``@champion`` only on the study's pre-named evidence, atomically.

The challenger is the primary comparison's first arm (``study.primary_comparison``). It is promoted
only when, on ``study.primary_suite`` at the CI's lower bound (hierarchical: replicates x query
clusters),

- the primary comparison clears ``promote.min_delta`` (e.g. RPO - DPO), and
- the challenger clears ``promote.min_delta`` against the current ``@champion`` (the champion answered
  the same suites in the report step; the base model stands in when there is no champion),

no other suite could regress beyond ``promote.max_regression`` against the base, and the test draw
(``evaluate.seed``) has never decided a promotion before: each decision needs a fresh draw, so one
draw is not tuned against forever. Every replicate of the challenger arm is registered with the
evidence on its version; ``@challenger`` is the first replicate (fixed in advance, never the best
scoring); ``@champion`` moves by compare-and-set, so a champion that changed during the study is not
overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reverso.config import Params

DRAW_TAG = "promotion.test_draw"


def _draw(params: Params) -> str:
    return f"evaluate.seed={params.evaluate.seed}"


def used_draw(params: Params) -> str | None:
    """The version whose promotion decision already used this study's test draw, if any."""
    from reverso import registry as reg

    found = reg.with_retries(lambda: reg.client().search_model_versions(f"name = '{params.registry.model_name}'"),
                             "model versions")
    return next((str(v.version) for v in found if (v.tags or {}).get(DRAW_TAG) == _draw(params)), None)


def _lower(diffs: dict[str, Any], key: str, suite: str) -> float | None:
    entry = diffs.get(key, {}).get(suite)
    return None if not entry or entry.get("ci_low") is None else float(entry["ci_low"])


def gate(params: Params, report: dict[str, Any]) -> list[str]:
    """Why the challenger may not be promoted (empty: it may)."""
    study, rule = params.study, params.promote
    challenger, other = study.primary()
    suite, floor = study.primary_suite, 100 * rule.min_delta
    diffs = report["differences"]
    reasons = []
    checks = [(f"{challenger}_minus_{other}", "primary comparison"),
              (f"{challenger}_minus_{'champion' if 'champion' in report['summary'].get(suite, {}) else 'base'}",
               "challenger - champion")]
    for key, what in checks:
        low = _lower(diffs, key, suite)
        if low is None:
            reasons.append(f"{what} ({key}) on {suite}: not measured")
        elif low <= floor:
            reasons.append(f"{what} ({key}) on {suite}: CI low {low:+.2f} pts <= min_delta {floor:.2f}")
    for other_suite, entry in diffs.get(f"{challenger}_minus_base", {}).items():
        if other_suite != suite and entry.get("ci_low") is not None and entry["ci_low"] < -100 * rule.max_regression:
            reasons.append(f"{other_suite}: {challenger} - base CI low {entry['ci_low']:+.2f} pts could regress "
                           f"beyond {100 * rule.max_regression:.1f}")
    return reasons


def promote_from_study(params: Params, report: dict[str, Any], evals: dict[str, dict[str, Any]],
                       workspace: Path) -> dict[str, Any]:
    """Register the challenger arm's replicates; move @champion only on the evidence (compare-and-set)."""
    from reverso import registry as reg
    from reverso.study import STUDY_MODELS, item_name
    from reverso.train import TRAIN_INFO

    study = params.study
    challenger = study.primary()[0]
    if challenger == "base" or report["split"] != "test":
        return {"decision": "skipped", "reason": "promotion needs a trained primary arm on the test split"}
    reg.setup(params.registry.experiment, workspace)
    champion_before = evals.get("champion", {}).get("version")
    reasons = gate(params, report)
    reused = used_draw(params)
    if reused is not None:
        reasons.append(f"the test draw {_draw(params)} already decided the promotion of version {reused}: "
                       "set a fresh evaluate.seed for a new decision")
    primary = report.get("primary") or {}
    evidence = {"study.primary": f"{primary.get('comparison')} on {primary.get('suite')}",
                **{f"study.primary.{k}": round(v, 3) for k, v in primary.items() if isinstance(v, float)},
                "study.split": report["split"], DRAW_TAG: _draw(params),
                "study.champion_before": champion_before or "none"}
    versions = []
    for seed in study.seeds:
        adapter = workspace / STUDY_MODELS / item_name(challenger, seed)
        info = json.loads((adapter / TRAIN_INFO).read_text())
        versions.append(_register(adapter, info, params.registry.model_name, challenger, seed))
    promote = not reasons
    if promote and not reg.set_alias_if(params.registry.model_name, reg.CHAMPION, versions[0], champion_before):
        promote = False
        reasons.append(f"@champion moved during the study (was {champion_before or 'unset'}): re-run the report "
                       "to decide against the new champion")
    decision = "promoted" if promote else "rejected"
    for seed, version in zip(study.seeds, versions, strict=True):
        reg.tag_version(params.registry.model_name, version, {
            **evidence, "study.model": item_name(challenger, seed),
            "promotion.decision": decision if version == versions[0] else "replicate",
            "promotion.reason": "; ".join(reasons) or "study evidence"})
    reg.set_alias(params.registry.model_name, reg.CHALLENGER, versions[0])
    return {"decision": decision, "version": versions[0], "replicate_versions": versions,
            "model": item_name(challenger, study.seeds[0]), "reasons": reasons, "primary": primary,
            "champion_before": champion_before}


def _register(adapter: Path, info: dict[str, Any], model_name: str, arm: str, seed: int) -> str:
    import mlflow

    from reverso import registry as reg
    from reverso.train.mlflow_model import log_policy

    with mlflow.start_run(run_id=info["run_id"]):
        logged = reg.with_retries(lambda: log_policy(str(adapter), str(Path(info["base_model"]).resolve())),
                                  "model logging")
    return reg.register_version(model_name, info["run_id"], logged.model_uri,
                                tags={"pairs": arm, "study": "true", "study.replicate": str(seed)},
                                model_id=logged.model_id)
