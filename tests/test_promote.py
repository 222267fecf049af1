"""Champion/challenger gate on a real MLflow registry (SQLite in a temp dir): promotion on evidence."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from reverso import registry as reg
from reverso.config import PromoteParams, RegistryParams
from reverso.promote import promote

REGISTRY = RegistryParams(experiment="test", model_name="policy")
PRIMARY = "multi_if.average"


def diff(low: float, high: float, n: int = 400) -> dict:
    return {"mean": (low + high) / 2, "ci_low": low, "ci_high": high, "n": n, "confidence": 0.95}


def add_version(vs_base: dict | None, vs_champion: dict | None = None, against: str | None = None,
                others: dict | None = None, policy: float = 0.6, base: float = 0.3) -> str:
    """A challenger with what evaluate tags: point estimates and the paired evidence of one run."""
    reg.setup(REGISTRY.experiment)
    with mlflow.start_run() as run:
        mlflow.log_param("x", 1)
    version = reg.register_version(REGISTRY.model_name, run.info.run_id, "file:///tmp/adapter", {})
    paired = {"policy-base": {PRIMARY: vs_base, **(others or {})} if vs_base else {}}
    if vs_champion is not None:
        paired["policy-champion"] = {PRIMARY: vs_champion}
    evidence = {"champion_version": against, "suite_sizes": {"ifeval": 400, "multi_if": 400, "sysbench": 300},
                "bootstrap": {"resamples": 2000, "confidence": 0.95, "seed": 2024}, "paired": paired}
    reg.tag_version(REGISTRY.model_name, version, {f"eval.policy.{PRIMARY}": policy, f"eval.base.{PRIMARY}": base,
                                                   "eval.evidence": json.dumps(evidence)})
    reg.set_alias(REGISTRY.model_name, reg.CHALLENGER, version)
    return version


def champion() -> str | None:
    found = reg.alias_version(REGISTRY.model_name, reg.CHAMPION)
    return str(found.version) if found else None


def test_promoted_when_the_ci_lower_bound_clears_min_delta(isolated_mlflow, tmp_path) -> None:
    first = add_version(diff(0.02, 0.09))
    decision = promote(PromoteParams(), REGISTRY, tmp_path / "promotion.json")
    assert decision.promote and champion() == first
    record = json.loads((tmp_path / "promotion.json").read_text())
    assert record["vs_base"]["ci_low"] == 0.02 and record["suite_sizes"]["multi_if"] == 400
    assert "95% CI [+0.0200, +0.0900], n=400" in record["reason"]
    found = reg.client().get_model_version(REGISTRY.model_name, first)
    assert found.tags["promotion.decision"] == "promoted"
    assert json.loads(found.tags["promotion.evidence"])["vs_base"]["n"] == 400
    run = reg.client().get_run(found.run_id)
    assert run.data.metrics["promotion.vs_base.ci_low"] == 0.02 and run.data.metrics["promotion.promoted"] == 1.0


def test_a_point_win_inside_the_noise_is_not_promoted(isolated_mlflow) -> None:
    # Point estimates say 0.6 vs 0.3; the paired CI still includes 0: no evidence, no promotion.
    add_version(diff(-0.01, 0.12))
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and champion() is None and "lower bound is not above min_delta" in decision.reason


def test_min_delta_applies_to_the_lower_bound(isolated_mlflow) -> None:
    add_version(diff(0.03, 0.10))
    decision = promote(PromoteParams(min_delta=0.05), REGISTRY)
    assert not decision.promote and "base" in decision.reason and champion() is None


def test_challenger_must_beat_the_champion_on_the_same_prompts(isolated_mlflow) -> None:
    first = add_version(diff(0.02, 0.09))
    assert promote(PromoteParams(), REGISTRY).promote
    add_version(diff(0.03, 0.10), vs_champion=diff(-0.02, 0.05), against=first)
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and f"champion v{first}" in decision.reason and champion() == first
    third = add_version(diff(0.05, 0.12), vs_champion=diff(0.01, 0.06), against=first)
    decision = promote(PromoteParams(), REGISTRY)
    assert decision.promote and champion() == third and decision.vs_champion["ci_low"] == 0.01


def test_evidence_against_another_champion_is_refused(isolated_mlflow) -> None:
    first = add_version(diff(0.02, 0.09))
    assert promote(PromoteParams(), REGISTRY).promote
    add_version(diff(0.05, 0.12))  # evaluated before v1 became champion: no champion in its run
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and "re-run evaluate" in decision.reason and champion() == first


def test_champion_moving_during_the_decision_is_not_overwritten(isolated_mlflow, monkeypatch, tmp_path) -> None:
    first = add_version(diff(0.02, 0.09))
    assert promote(PromoteParams(), REGISTRY).promote
    rival = add_version(diff(0.02, 0.09), vs_champion=diff(0.01, 0.05), against=first)
    challenger = add_version(diff(0.05, 0.12), vs_champion=diff(0.02, 0.08), against=first)
    original = reg.set_alias_if

    def concurrent_promotion(name: str, alias: str, version: str, expected: str | None) -> bool:
        reg.set_alias(name, alias, rival)  # another checkout promotes its challenger first
        monkeypatch.setattr(reg, "set_alias_if", original)
        return original(name, alias, version, expected)

    monkeypatch.setattr(reg, "set_alias_if", concurrent_promotion)
    decision = promote(PromoteParams(), REGISTRY, tmp_path / "promotion.json")
    assert champion() == rival  # not overwritten
    assert not decision.promote and f"@champion is v{rival}" in decision.reason and "re-run evaluate" in decision.reason
    assert json.loads((tmp_path / "promotion.json").read_text())["attempts"] == 2
    tags = reg.client().get_model_version(REGISTRY.model_name, challenger).tags
    assert tags["promotion.decision"] == "rejected"


def test_regression_at_the_ci_upper_bound_blocks_promotion(isolated_mlflow) -> None:
    add_version(diff(0.05, 0.12), others={"sysbench.isr": diff(-0.08, 0.01, 300)})
    decision = promote(PromoteParams(max_regression=0.05), REGISTRY)
    assert not decision.promote and "sysbench.isr vs base: drop up to 0.0800" in decision.reason
    assert champion() is None


def test_a_possible_drop_within_max_regression_does_not_block(isolated_mlflow) -> None:
    add_version(diff(0.05, 0.12), others={"sysbench.isr": diff(-0.03, 0.04, 300)})
    assert promote(PromoteParams(max_regression=0.05), REGISTRY).promote


def test_dry_run_changes_nothing(isolated_mlflow) -> None:
    version = add_version(diff(0.2, 0.4))
    decision = promote(PromoteParams(), REGISTRY, dry_run=True)
    assert decision.promote and champion() is None
    assert "promotion.decision" not in reg.client().get_model_version(REGISTRY.model_name, version).tags


def test_missing_evidence_blocks_promotion(isolated_mlflow) -> None:
    reg.setup(REGISTRY.experiment)
    with mlflow.start_run() as run:
        pass
    version = reg.register_version(REGISTRY.model_name, run.info.run_id, "file:///tmp/a", {})
    reg.tag_version(REGISTRY.model_name, version, {f"eval.policy.{PRIMARY}": 0.9, f"eval.base.{PRIMARY}": 0.1})
    reg.set_alias(REGISTRY.model_name, reg.CHALLENGER, version)
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and "run evaluate" in decision.reason


def test_unscored_primary_metric_blocks_promotion(isolated_mlflow) -> None:
    add_version(None)
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and "no paired CI" in decision.reason


def test_unreachable_tracking_server_fails_clearly(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setattr(reg.time, "sleep", lambda s: None)
    with pytest.raises(reg.RegistryError, match="MLFLOW_TRACKING_URI"):
        reg.setup("x")


def test_evaluate_pairs_policy_with_champion_in_one_run_and_the_gate_reads_it(isolated_mlflow, tmp_path,
                                                                               monkeypatch) -> None:
    """evaluate answers with base, policy and @champion in one run; its evidence tag drives promote."""
    import reverso.evaluate.run as evaluation
    from reverso.config import EvaluateParams, SuiteSizes
    from reverso.train import TRAIN_INFO

    reg.setup(REGISTRY.experiment)
    versions = []
    for _ in range(2):
        with mlflow.start_run() as run:
            mlflow.log_param("x", 1)
        versions.append(reg.register_version(REGISTRY.model_name, run.info.run_id, "file:///tmp/a", {}))
    reg.set_alias(REGISTRY.model_name, reg.CHAMPION, versions[0])
    reg.set_alias(REGISTRY.model_name, reg.CHALLENGER, versions[1])
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    (policy_dir / TRAIN_INFO).write_text(json.dumps({"run_id": run.info.run_id, "model_name": REGISTRY.model_name,
                                                     "version": versions[1]}))
    monkeypatch.setattr(reg, "download_adapter", lambda name, version: tmp_path / f"adapter-v{version}")
    answered = {}

    def fake_models(models, suites, params, judge=None, scores=None, finish=None, workspace=None):  # generation is another module's job
        answered.update(models)
        texts = {"base": "", "policy": "Hello! Here is my answer. Hope this helps!", "champion": "hi"}
        outputs = {name: {suite: [[texts[name]] * len(s.turns) for s in items] for suite, items in suites.items()}
                   for name in models}
        results = {name: evaluation.score_model(suites, outputs[name], judge, scores.setdefault(name, {}))
                   for name in models}
        return results, outputs, {"generation_s": 0.0, "scoring_s": 0.0}

    monkeypatch.setattr(evaluation, "evaluate_models", fake_models)
    params = EvaluateParams(suites=SuiteSizes(ifeval=8, multi_if=6, sysbench=4), sysbench_turns=2)
    repo = Path(__file__).resolve().parents[1]
    results = evaluation.evaluate(params, REGISTRY, tmp_path / "base", policy_dir, repo / "data/seed",
                                  tmp_path / "eval.json", tmp_path / "plots", tmp_path / "outputs.jsonl", tmp_path)
    assert set(answered) == {"base", "policy", "champion"}
    assert answered["champion"][1] == tmp_path / f"adapter-v{versions[0]}"
    written = json.loads((tmp_path / "eval.json").read_text())
    assert written["champion_version"] == versions[0] and set(written["ci"]) == {"base", "policy", "champion"}
    assert written["paired"]["policy-champion"][PRIMARY]["n"] == 6
    assert "Paired difference policy-champion" in (tmp_path / "plots/eval_report.md").read_text()
    tags = reg.client().get_model_version(REGISTRY.model_name, versions[1]).tags
    evidence = json.loads(tags["eval.evidence"])
    assert evidence["champion_version"] == versions[0] and evidence["paired"] == results["paired"]
    decision = promote(PromoteParams(), REGISTRY)
    assert decision.evaluated_against == versions[0]
    assert decision.vs_champion == results["paired"]["policy-champion"][PRIMARY]
