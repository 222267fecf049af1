"""promote: the champion/challenger gate. ``@champion`` moves only when the challenger wins.

The challenger must beat the base model and the current champion on the primary metric by more
than ``promote.min_delta``, and regress no other suite's headline metric by more than
``promote.max_regression`` versus the base. The decision and its numbers are recorded as tags on the challenger
version; the alias move is the last step. ``dry_run`` decides and reports, changing nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reverso import registry as reg
from reverso.config import PromoteParams, RegistryParams
from reverso.io import write_json


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    challenger_version: str | None
    challenger: float | None
    base: float | None
    champion_version: str | None
    champion: float | None


def _metric(version: Any, who: str, metric: str) -> float | None:
    value = (version.tags or {}).get(f"eval.{who}.{metric}") if version is not None else None
    return float(value) if value is not None else None


def regressions(version: Any, primary: str, limit: float) -> list[str]:
    """Headline metrics of other suites where the challenger drops below base by more than ``limit``."""
    from reverso.evaluate.metrics import HEADLINE

    found = []
    for metric in HEADLINE.values():
        policy, base = _metric(version, "policy", metric), _metric(version, "base", metric)
        if metric != primary and policy is not None and base is not None and policy < base - limit:
            found.append(f"{metric} {policy:.4f} < base {base:.4f} - {limit}")
    return found


def _version(version: Any) -> str | None:
    return str(version.version) if version is not None else None


def decide(params: PromoteParams, model_name: str) -> Decision:
    challenger = reg.alias_version(model_name, reg.CHALLENGER)
    champion = reg.alias_version(model_name, reg.CHAMPION)
    metric = params.primary_metric
    chal_score, base_score = _metric(challenger, "policy", metric), _metric(challenger, "base", metric)
    champ_score = _metric(champion, "policy", metric)
    common = {"metric": metric, "challenger_version": _version(challenger),
              "challenger": chal_score, "base": base_score,
              "champion_version": _version(champion), "champion": champ_score}
    if challenger is None:
        return Decision(False, f"no version of {model_name!r} has alias @{reg.CHALLENGER}", **common)
    if chal_score is None or base_score is None:
        return Decision(False, f"challenger v{challenger.version} has no eval metric {metric!r}: run evaluate", **common)
    if champion is not None and str(champion.version) == str(challenger.version):
        return Decision(False, f"v{challenger.version} is already @{reg.CHAMPION}", **common)
    if chal_score <= base_score + params.min_delta:
        return Decision(False, f"{metric} {chal_score:.4f} does not beat base {base_score:.4f} "
                               f"by more than {params.min_delta}", **common)
    if champ_score is not None and chal_score <= champ_score + params.min_delta:
        return Decision(False, f"{metric} {chal_score:.4f} does not beat champion v{champion.version} "
                               f"{champ_score:.4f} by more than {params.min_delta}", **common)
    dropped = regressions(challenger, metric, params.max_regression)
    if dropped:
        return Decision(False, "regresses another suite: " + "; ".join(dropped), **common)
    return Decision(True, f"{metric} {chal_score:.4f} beats base {base_score:.4f}"
                          + (f" and champion {champ_score:.4f}" if champ_score is not None else ""), **common)


def promote(
    params: PromoteParams, registry: RegistryParams, out: str | Path | None = None,
    dry_run: bool = False, workspace: str | Path = ".",
) -> Decision:
    reg.setup(registry.experiment, workspace)
    decision = decide(params, registry.model_name)
    if not dry_run and decision.challenger_version is not None:
        reg.tag_version(registry.model_name, decision.challenger_version, {
            "promotion.decision": "promoted" if decision.promote else "rejected",
            "promotion.reason": decision.reason})
        if decision.promote:
            reg.set_alias(registry.model_name, reg.CHAMPION, decision.challenger_version)  # last step
    if out is not None:
        write_json(out, {**asdict(decision), "dry_run": dry_run})
    return decision
