"""A training-signal search on the validation pool, end to end on the tiny model (configs/search/cpu.yaml's shape)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.workspace import STUDY_SMOKE, copied_workspace, run

SEARCH = [o for o in STUDY_SMOKE if not o.startswith(("study.", "train.max_steps"))] + [
    "study.split=validation", "study.seeds=[1]", "study.bootstrap=100", "study.aa_scale=0",
    "train.pairs_per_step=2", "train.held_out_pairs=4",
    "study.arms={hsft_b4: {builder: hindsight_sft, loss: [sft], budget: 4}, "
    "full_b4: {builder: hindsight_sft, loss: [sft], budget: 4, lora: false, learning_rate: 1.0e-05}, "
    "then_rpo_b4: {builder: rpo, loss: [sigmoid, {type: sft, weight: 1.0}], margin: released, budget: 4, "
    "init_from: hsft_b4}}",
    "study.primary_comparison=[hsft_b4, base]",
]


@pytest.mark.slow
def test_search_smoke_sft_full_ft_and_lineage(tmp_path: Path) -> None:
    """A search on the validation pool: an SFT arm, a full fine-tuned arm (evaluated as a whole model) and
    an arm that starts from the SFT arm's adapter, at budgets; the table and curves; nothing published."""
    workspace, env, bin_dir = copied_workspace(tmp_path)
    run([str(bin_dir / "reverso"), "study", *sum((["-S", o] for o in SEARCH), [])], workspace, env)
    study = json.loads((workspace / "metrics/study.json").read_text())
    assert set(study["arms"]) == {"base", "hsft_b4-1", "full_b4-1", "then_rpo_b4-1"}
    trained = {p.stem: json.loads(p.read_text()) for p in (workspace / "reports/study/train").glob("*.json")}
    assert all(t["steps"] == 2 for t in trained.values())  # budget 4 at 2 a step
    assert trained["then_rpo_b4-1"]["init_from"] == "hsft_b4-1" and trained["hsft_b4-1"]["init_from"] is None
    assert trained["hsft_b4-1"]["regime"]["builder"] == "hindsight_sft"
    assert "after" in trained["hsft_b4-1"]["rule_reading"]  # measured on the held-out rpo pairs
    full = workspace / "models/study/full_b4-1"
    assert (full / "config.json").exists() and not (full / "adapter_config.json").exists()
    rows = {r["arm"]: r for r in study["search"]}
    assert set(rows) == {"hsft_b4", "full_b4", "then_rpo_b4"}
    assert rows["full_b4"]["curve"] == "full" and rows["hsft_b4"]["budget"] == 4
    assert set(rows["hsft_b4"]["minus_base"]) == {"ifeval", "multi_if", "sysbench"}
    assert "| hsft | 4 |" in (workspace / "reports/study/search.md").read_text()
    assert (workspace / "reports/study/search_curves.png").stat().st_size > 0
    assert study["published"] == {} and not (workspace / "models/study/hsft_b4").exists()  # validation only
