"""The end-of-run summary reads the stage metrics files and says what happened."""

from __future__ import annotations

import json
from pathlib import Path

from reverso.summary import render_summary


def write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_summary_reports_pairs_held_out_margin_metrics_and_promotion(tmp_path: Path) -> None:
    write(tmp_path / "metrics/pairs.json", {"rpo": {"pairs": 34, "train": 31, "eval": 3},
                                            "dpo": {"pairs": 31, "train": 27, "eval": 4}})
    write(tmp_path / "metrics/train.json", {
        "steps": 16, "train_loss": 1.0467, "version": "2", "run_id": "abc",
        "final": {"rewards/margins": -0.13},
        "held_out": {"before": {"rewards/margins": 0.0}, "after": {"rewards/margins": 0.138}},
        "rule_reading": {"before": {"couples": 4, "couple_margin_sum": 0.0, "couples_reading": 0.0},
                         "after": {"couples": 4, "couple_margin_sum": 0.0213, "couples_reading": 0.75}}})
    write(tmp_path / "metrics/eval.json", {
        "base": {"ifeval": {"prompt_strict": 0.0625}, "multi_if": {"average": 0.37}, "sysbench": {"isr": 0.0}},
        "policy": {"ifeval": {"prompt_strict": 0.125}, "multi_if": {"average": 0.3148}, "sysbench": {"isr": 0.0}}})
    write(tmp_path / "metrics/promotion.json", {"promote": False, "reason": "does not beat base"})
    text = render_summary(tmp_path)
    assert "34 RPO pairs (train 31, eval 3), 31 DPO-baseline pairs" in text
    assert "16 steps, mean loss 1.0467, held-out reward margin 0.000 -> 0.138" in text
    assert "version 2 (@challenger), run abc" in text
    assert "couple margin sum +0.0000 -> +0.0213 over 4 couples" in text and "> 0 in 75% after training" in text
    assert "multi_if.average       base 0.370 -> policy 0.315" in text
    assert "not promoted: does not beat base" in text


def test_summary_without_held_out_pairs_or_later_stages(tmp_path: Path) -> None:
    write(tmp_path / "metrics/train.json", {"steps": 3, "train_loss": 0.7, "version": "1", "run_id": "r",
                                            "held_out": {}})
    text = render_summary(tmp_path)
    assert "3 steps, mean loss 0.7000" in text and "held-out" not in text
    assert "eval:" not in text and "promotion:" not in text


def test_summary_states_the_ci_behind_the_promotion_decision(tmp_path: Path) -> None:
    diff = {"mean": 0.041, "ci_low": 0.012, "ci_high": 0.07, "n": 400, "confidence": 0.95}
    write(tmp_path / "metrics/eval.json", {
        "base": {"multi_if": {"average": 0.30}}, "policy": {"multi_if": {"average": 0.341}},
        "paired": {"policy-base": {"multi_if.average": diff}}, "suite_sizes": {"multi_if": 400},
        "power": {"target_halfwidth": 0.05, "max_halfwidth": 0.031, "wider_than_target": []},
        "not_scored": {"policy.official_sysbench": "3 of 3 criteria have no verdict"}})
    write(tmp_path / "metrics/promotion.json", {"promote": True, "reason": "wins", "metric": "multi_if.average",
                                                "vs_base": diff, "vs_champion": None})
    text = render_summary(tmp_path)
    assert "paired diff +0.041 [+0.012, +0.070] (95% CI, n=400)" in text
    assert "eval size: multi_if 400; widest headline CI +-0.031" in text
    assert "multi_if.average vs base: +0.041 [+0.012, +0.070] (95% CI, n=400)" in text
    assert "not scored: policy.official_sysbench" in text


def test_summary_points_at_the_inspector_mlflow_run_and_prefect_flow_run(tmp_path: Path) -> None:
    write(tmp_path / "metrics/train.json", {"steps": 3, "train_loss": 0.7, "version": "4", "run_id": "r1",
                                            "held_out": {}})
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/index.html").write_text("<html></html>")
    write(tmp_path / ".reverso/flow-run.json", {"flow": "reverso-pipeline", "name": "bold-fox", "id": "f-1",
                                                "ui_url": None, "api_url": None})
    text = render_summary(tmp_path)
    assert f"Inspector:  {(tmp_path / 'reports/index.html').resolve()}" in text
    assert "MLflow:     run r1, model version 4 (@challenger)" in text
    assert "Prefect:    flow run bold-fox (f-1) of reverso-pipeline, ephemeral Prefect API" in text
