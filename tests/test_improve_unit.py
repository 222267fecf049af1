"""The improve loop's bookkeeping without a model: the round plan, the report and curve, the inspector's view,
and the registry cases a killed or overtaken round must handle (real MLflow, SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reverso import improve
from reverso.config import load_params
from reverso.improve import RoundPaths


def write(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def ci(mean: float, low: float, high: float, n: int = 8) -> dict:
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": n, "confidence": 0.95}


def fake_round(root: Path, k: int, decision: str, before: str | None, version: str) -> None:
    paths = RoundPaths(k)
    write(root / paths.champion_json, {"round": k, "version": before, "collect_seed": 7000 + k, "reference": "base"})
    write(root / paths.decision, {"round": k, "challenger_version": version, "champion_before": before,
                                  "champion_after": version if decision == "promoted" else before,
                                  "decision": decision, "reason": "test", "min_delta": 0.0})
    metric = "multi_if.average"
    write(root / paths.eval_dir / "metrics.json", {
        "ci": {"policy": {metric: ci(0.4 + k / 10, 0.3, 0.6)}, "base": {metric: ci(0.3, 0.2, 0.4)}},
        "paired": {"policy-base": {metric: ci(0.1, 0.02, 0.2)}}})
    write(root / paths.metrics / "pairs.json", {"rpo": {"train": 10 * k, "eval": 2}})


def test_round_plan_chains_rounds_and_sets_per_round_deltas(tmp_path: Path) -> None:
    params = load_params(tmp_path / "none.yaml", ["improve.min_delta={2: 0.3}", "promote.min_delta=0.01"])
    plan = improve.round_plan(params, 3, tmp_path)
    assert [r["prev"] for r in plan["rounds"].values()] == [
        "improve/start.json", "improve/round-1/decision.json", "improve/round-2/decision.json"]
    assert [r["min_delta"] for r in plan["rounds"].values()] == [0.01, 0.3, 0.01]
    assert plan["last"] == "improve/round-3/decision.json"
    improve.write_plan(tmp_path, plan)
    assert yaml.safe_load((tmp_path / improve.PLAN).read_text())["rounds"]["2"]["round"] == 2


def test_finished_rounds_count_only_from_round_one(tmp_path: Path) -> None:
    assert improve.finished_rounds(tmp_path) == 0
    fake_round(tmp_path, 1, "rejected", None, "1")
    fake_round(tmp_path, 3, "rejected", None, "3")  # no round 2: round 3's file does not count
    assert improve.finished_rounds(tmp_path) == 1


def test_report_curve_and_inspector_view(tmp_path: Path) -> None:
    from reverso.improve.report import build, plot_curve
    from reverso.inspect.eval_view import improve_view

    params = load_params(tmp_path / "none.yaml")
    fake_round(tmp_path, 1, "promoted", None, "1")
    fake_round(tmp_path, 2, "rejected", "1", "2")
    improve.write_plan(tmp_path, improve.round_plan(params, 2, tmp_path))
    write(tmp_path / improve.FINAL, {"champion_version": "1", "after_round": 2,
                                     "paired": {"multi_if.average": ci(0.08, 0.01, 0.15)}})
    report = build(params, tmp_path)
    assert report["promoted_rounds"] == [1] and report["champion"] == "1"
    assert report["rounds"][1]["validation"]["challenger"]["mean"] == pytest.approx(0.6)
    assert report["rounds"][1]["pairs"]["train"] == 20 and report["final_test"]["vs_base"]["mean"] == 0.08
    plot_curve(report, tmp_path / "curve.png")
    view = improve_view(report, tmp_path / "curve.png")
    assert [r["decision"] for r in view["rounds"]] == ["promoted", "rejected"] and view["curve_png"]
    assert view["final"]["diff_ci"] == (0.01, 0.15)
    assert improve_view({}, tmp_path / "none.png") == {}


@pytest.fixture()
def registry_with_champion(tmp_path: Path, isolated_mlflow: str) -> Path:
    """A workspace whose registry has versions 1 and 2 of reverso-policy; @champion is v1."""
    import mlflow

    from reverso import registry as reg

    reg.setup("reverso", tmp_path)
    with mlflow.start_run() as run:
        pass
    for _ in range(2):
        reg.register_version("reverso-policy", run.info.run_id, str(tmp_path), tags={})
    reg.set_alias("reverso-policy", reg.CHAMPION, "1")
    write(tmp_path / improve.START, {"champion_version": None})
    return tmp_path


def test_a_round_killed_after_the_alias_moved_is_recorded_as_promoted(registry_with_champion: Path) -> None:
    from reverso.train import TRAIN_INFO

    root = registry_with_champion
    write(root / RoundPaths(1).champion_json, {"round": 1, "version": None})
    write(root / RoundPaths(1).adapter / TRAIN_INFO, {"version": "1"})  # v1 took @champion, then the kill
    result = improve.promote_round(load_params(root / "none.yaml"), 1, 0.0, root)
    assert result.decision == "promoted" and result.champion_after == "1" and result.champion_before is None
    assert json.loads((root / RoundPaths(1).decision).read_text())["decision"] == "promoted"


def test_a_round_whose_champion_moved_outside_the_campaign_stops(registry_with_champion: Path) -> None:
    root = registry_with_champion
    write(root / RoundPaths(2).champion_json, {"round": 2, "version": "2"})  # the round started from v2
    with pytest.raises(improve.ImproveError, match="moved outside this campaign.*--restart"):
        improve.evaluate_round(load_params(root / "none.yaml"), 2, root)
