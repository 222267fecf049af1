"""Champion/challenger gate on a real MLflow registry (SQLite in a temp dir)."""

from __future__ import annotations

import json

import mlflow
import pytest

from reverso import registry as reg
from reverso.config import PromoteParams, RegistryParams
from reverso.promote import promote

REGISTRY = RegistryParams(experiment="test", model_name="policy")


def add_version(policy: float, base: float, extra: dict | None = None) -> str:
    reg.setup(REGISTRY.experiment)
    with mlflow.start_run() as run:
        mlflow.log_param("x", 1)
    version = reg.register_version(REGISTRY.model_name, run.info.run_id, "file:///tmp/adapter", {})
    reg.tag_version(REGISTRY.model_name, version, {"eval.policy.multi_if.average": policy,
                                                   "eval.base.multi_if.average": base, **(extra or {})})
    reg.set_alias(REGISTRY.model_name, reg.CHALLENGER, version)
    return version


def champion() -> str | None:
    found = reg.alias_version(REGISTRY.model_name, reg.CHAMPION)
    return str(found.version) if found else None


def test_better_challenger_is_promoted_worse_is_not(isolated_mlflow, tmp_path) -> None:
    first = add_version(policy=0.5, base=0.3)
    decision = promote(PromoteParams(), REGISTRY, tmp_path / "promotion.json")
    assert decision.promote and champion() == first
    assert json.loads((tmp_path / "promotion.json").read_text())["promote"] is True

    add_version(policy=0.4, base=0.3)  # beats base, loses to the champion
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and "champion" in decision.reason and champion() == first

    third = add_version(policy=0.7, base=0.3)
    assert promote(PromoteParams(), REGISTRY).promote and champion() == third
    tags = reg.client().get_model_version(REGISTRY.model_name, third).tags
    assert tags["promotion.decision"] == "promoted"


def test_challenger_must_beat_base_by_delta(isolated_mlflow) -> None:
    add_version(policy=0.32, base=0.3)
    decision = promote(PromoteParams(min_delta=0.05), REGISTRY)
    assert not decision.promote and "base" in decision.reason and champion() is None


def test_regression_on_another_suite_blocks_promotion(isolated_mlflow) -> None:
    add_version(policy=0.6, base=0.3, extra={"eval.policy.sysbench.isr": 0.1, "eval.base.sysbench.isr": 0.4})
    decision = promote(PromoteParams(max_regression=0.05), REGISTRY)
    assert not decision.promote and "sysbench.isr" in decision.reason and champion() is None


def test_dry_run_changes_nothing(isolated_mlflow) -> None:
    version = add_version(policy=0.9, base=0.1)
    decision = promote(PromoteParams(), REGISTRY, dry_run=True)
    assert decision.promote and champion() is None
    assert "promotion.decision" not in reg.client().get_model_version(REGISTRY.model_name, version).tags


def test_missing_metrics_block_promotion(isolated_mlflow) -> None:
    reg.setup(REGISTRY.experiment)
    with mlflow.start_run() as run:
        pass
    version = reg.register_version(REGISTRY.model_name, run.info.run_id, "file:///tmp/a", {})
    reg.set_alias(REGISTRY.model_name, reg.CHALLENGER, version)
    decision = promote(PromoteParams(), REGISTRY)
    assert not decision.promote and "run evaluate" in decision.reason


def test_unreachable_tracking_server_fails_clearly(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setattr(reg.time, "sleep", lambda s: None)
    with pytest.raises(reg.RegistryError, match="MLFLOW_TRACKING_URI"):
        reg.setup("x")
