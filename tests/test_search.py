"""A training-signal search on the validation pool, end to end on the tiny model (configs/search/cpu.yaml's shape)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverso.study.search import price_gap, render_gap, render_selection, select
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
    table = (workspace / "reports/study/search.md").read_text()
    assert "| hsft | 4 |" in table and ("**Selection**" in table or "no arm is eligible" in table)
    assert study["search_selection"]["suites"] == ["ifeval", "multi_if"]
    assert {g["curve"] for g in study["search_gap"]} == {"hsft", "full", "then_rpo"}
    assert (workspace / "reports/study/search_curves.png").stat().st_size > 0
    assert study["published"] == {} and not (workspace / "models/study/hsft_b4").exists()  # validation only


def _row(arm: str, budget: int, ifeval: tuple[float, float, float], multi_if: tuple[float, float, float]) -> dict:
    entry = lambda m, lo, hi: {"mean": m, "ci_low": lo, "ci_high": hi}  # noqa: E731
    return {"arm": arm, "budget": budget, "minus_base": {"ifeval": entry(*ifeval), "multi_if": entry(*multi_if)}}


FLOOR = {"difference": {"ifeval": {"mean": 0.0}, "multi_if": {"mean": 0.3}}}


def test_selection_rule_scores_eligibility_ties_and_primary() -> None:
    """configs/search/cpu.yaml's rule: mean of the two differences; an arm whose CI on a suite lies wholly
    below the A/A floor's difference is out however high its score; ties go to the smaller budget; the
    primary suite is the selected arm's larger difference."""
    rows = [
        _row("wide_b100", 100, (4.0, -1.8, 11.0), (-0.6, -3.7, 2.7)),     # score 1.7
        _row("tie_b40", 40, (1.0, -3.0, 5.0), (2.4, -1.0, 5.0)),          # score 1.7, smaller budget
        _row("loses_b10", 10, (9.0, 4.0, 14.0), (-2.0, -3.0, 0.2)),        # score 3.5, multi_if CI below 0.3
        _row("flat_b130", 130, (0.0, -2.9, 3.0), (0.2, -3.0, 3.5)),
    ]
    selection = select(rows, FLOOR)
    assert selection["selected"] == "tie_b40" and selection["score"] == pytest.approx(1.7)
    assert selection["primary_suite"] == "multi_if" and selection["primary_comparison"] == ["tie_b40", "base"]
    assert "loses_b10" in selection["ineligible"] and "multi_if" in selection["ineligible"]["loses_b10"]
    assert [r["arm"] for r in selection["ranking"]] == ["tie_b40", "wide_b100", "flat_b130"]
    assert "**tie_b40**" in render_selection(selection)
    # Without the tie, the higher score wins whatever its budget; its primary suite is IFEval-style.
    assert select(rows[:1] + rows[3:], FLOOR)["primary_suite"] == "ifeval"


def test_selection_says_when_nothing_scores_above_zero_or_nothing_is_eligible() -> None:
    nothing = select([_row("a_b1", 1, (-1.0, -4.0, 2.0), (0.0, -3.0, 3.0))], FLOOR)
    assert nothing["selected"] == "a_b1" and not nothing["any_above_zero"]
    assert "found nothing" in render_selection(nothing)
    none = select([_row("a_b1", 1, (-6.0, -9.0, -2.0), (0.0, -3.0, 3.0)),
                   {"arm": "b_b1", "budget": 1, "minus_base": {"ifeval": None}}], FLOOR)
    assert none["selected"] is None and set(none["ineligible"]) == {"a_b1", "b_b1"}
    assert "not scored on ifeval, multi_if" in none["ineligible"]["b_b1"]
    assert "no arm is eligible" in render_selection(none)


def test_priced_gap_extrapolates_each_curve_in_log_budget() -> None:
    """+1 point per 10x budget from +0 at 100 passes: +5 needs 10^7 passes; a falling curve never gets there."""
    rows = [dict(_row(f"up_b{b}", b, (m, m - 3, m + 3), (-m, -m - 3, -m + 3)), curve="up", train_wall_s=2 * b)
            for b, m in ((100, 0.0), (1000, 1.0), (10000, 2.0))]
    rows.append(dict(_row("one_b40", 40, (1.0, -2, 4), (1.0, -2, 4)), curve="one", train_wall_s=80))
    gap = {(g["curve"], g["suite"]): g for g in price_gap(rows)}
    up = gap[("up", "ifeval")]
    assert up["points_per_decade"] == pytest.approx(1.0) and up["budget_for_target"] == pytest.approx(1e7)
    assert up["hours_for_target"] == pytest.approx(2e7 / 3600)
    assert "budget_for_target" not in gap[("up", "multi_if")] and gap[("up", "multi_if")]["points_per_decade"] < 0
    assert "points_per_decade" not in gap[("one", "ifeval")]  # one budget: no line
    table = render_gap(list(gap.values()))
    assert "never (slope ≤ 0)" in table and "10,000,000" in table
    flat = [dict(_row(f"flat_b{b}", b, (m, m - 3, m + 3), (m, m - 3, m + 3)), curve="flat", train_wall_s=b)
            for b, m in ((100, 0.0), (1000, 0.001))]  # +0.001 a decade: 10^5002 passes, not a float
    far = price_gap(flat)[0]
    assert far["log10_budget_for_target"] == pytest.approx(5002) and "budget_for_target" not in far
    assert "> 10^8" in render_gap([far])
