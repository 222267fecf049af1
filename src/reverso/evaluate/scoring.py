"""From answers to results: scores per turn, suite metrics, bootstrap CIs and paired differences.

``metrics/eval.json`` keeps one block per model (``base``, ``policy``, ``champion`` when evaluated)
with each suite's metrics, plus:

- ``ci[model]["<suite>.<metric>"]``: point estimate and percentile 95 % CI over the suite's units;
- ``paired["policy-base"|"policy-champion"]["<suite>.<metric>"]``: the difference on the same units
  (same resamples for both models) — what the promotion gate reads;
- ``power``: the widest headline half-width and the metrics wider than ``evaluate.target_halfwidth``.
"""

from __future__ import annotations

from typing import Any

from reverso.config import EvaluateJudge, EvaluateParams
from reverso.contracts import Session
from reverso.evaluate.intervals import UNITS, intervals, paired, suite_kind
from reverso.evaluate.metrics import HEADLINE, SUITE_METRICS, TurnScore, per_constraint, score_sessions
from reverso.evaluate.stats import halfwidth

Scores = dict[str, list[list[TurnScore]]]
PAIRS = {"policy-base": ("policy", "base"), "policy-champion": ("policy", "champion")}


def make_eval_judge(params: EvaluateJudge) -> Any:
    """The configured soft-criteria judge, or None (suites with soft criteria are then not scored)."""
    if params.backend == "none":
        return None
    from reverso.constraints.judge import make_judge

    if params.backend == "openai":
        return make_judge("openai", base_url=params.base_url, model=params.model, api_key_env=params.api_key_env)
    return make_judge("hf", model_path=params.model, trust_remote_code=params.trust_remote_code)


def score_outputs(suites: dict[str, list[Session]], texts: dict[str, list[list[str]]], judge: Any = None) -> Scores:
    return {name: score_sessions(suites[name], texts[name], judge) for name in suites}


def metrics_from_scores(scores: Scores) -> dict[str, Any]:
    """Each suite's metrics (by its benchmark's definitions) and per-constraint pass rates."""
    result: dict[str, Any] = {name: SUITE_METRICS[suite_kind(name)](suite_scores)
                              for name, suite_scores in scores.items()}
    result["per_constraint"] = per_constraint(list(scores.values()))
    return result


def headline_keys(names: list[str]) -> list[str]:
    """``official_ifeval`` -> ``official_ifeval.prompt_strict``: the headline metric of each suite."""
    return [f"{name}.{HEADLINE[suite_kind(name)].split('.', 1)[1]}" for name in names]


def confidence_report(scores: dict[str, Scores], params: EvaluateParams) -> dict[str, Any]:
    """CIs per model and paired differences (policy vs base, vs champion), all on the same resamples."""
    boot = params.bootstrap
    settings = {"resamples": boot.resamples, "confidence": boot.confidence, "seed": params.seed}
    ci = {model: {key: value for name, suite in by_suite.items()
                  for key, value in intervals(name, suite, **settings).items()}
          for model, by_suite in scores.items()}
    diffs = {label: {key: value for name in scores[a]
                     for key, value in paired(name, scores[a][name], scores[b][name], **settings).items()}
             for label, (a, b) in PAIRS.items() if a in scores and b in scores}
    headline = headline_keys(list(next(iter(scores.values()), {})))
    widths = {f"{model}:{key}": halfwidth(ci[model][key]) for model in ci for key in headline if key in ci[model]}
    wide = sorted(k for k, w in widths.items() if w is not None and w > params.target_halfwidth)
    power = {"target_halfwidth": params.target_halfwidth,
             "max_halfwidth": max((w for w in widths.values() if w is not None), default=None),
             "wider_than_target": wide}
    units = {name: UNITS[suite_kind(name)] for name in next(iter(scores.values()), {})}
    return {"ci": ci, "paired": diffs, "power": power, "bootstrap": {**settings, "units": units}}


def unscored_suites(results: dict[str, Any], models: list[str]) -> dict[str, str]:
    """``{"<model>.<suite>": reason}`` for every suite reported as not scored."""
    return {f"{model}.{suite}": value["not_scored"] for model in models
            for suite, value in results[model].items() if isinstance(value, dict) and "not_scored" in value}


def evidence(results: dict[str, Any]) -> dict[str, Any]:
    """What the promotion gate needs, as one JSON tag on the challenger's model version."""
    return {"champion_version": results.get("champion_version"), "suite_sizes": results["suite_sizes"],
            "bootstrap": results["bootstrap"], "paired": results["paired"],
            "policy": results["ci"].get("policy", {})}
