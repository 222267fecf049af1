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
        "held_out": {"before": {"rewards/margins": 0.0}, "after": {"rewards/margins": 0.138}}})
    write(tmp_path / "metrics/eval.json", {
        "base": {"ifeval": {"prompt_strict": 0.0625}, "multi_if": {"average": 0.37}, "sysbench": {"isr": 0.0}},
        "policy": {"ifeval": {"prompt_strict": 0.125}, "multi_if": {"average": 0.3148}, "sysbench": {"isr": 0.0}}})
    write(tmp_path / "metrics/promotion.json", {"promote": False, "reason": "does not beat base"})
    text = render_summary(tmp_path)
    assert "34 RPO pairs (train 31, eval 3), 31 DPO-baseline pairs" in text
    assert "16 steps, mean loss 1.0467, held-out reward margin 0.000 -> 0.138" in text
    assert "version 2 (@challenger), run abc" in text
    assert "multi_if.average       base 0.370 -> policy 0.315" in text
    assert "not promoted: does not beat base" in text


def test_summary_without_held_out_pairs_or_later_stages(tmp_path: Path) -> None:
    write(tmp_path / "metrics/train.json", {"steps": 3, "train_loss": 0.7, "version": "1", "run_id": "r",
                                            "held_out": {}})
    text = render_summary(tmp_path)
    assert "3 steps, mean loss 0.7000" in text and "held-out" not in text
    assert "eval:" not in text and "promotion:" not in text
