"""Suites, metric definitions and official-format loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import EvaluateParams
from reverso.evaluate.loaders import load_ifbench, load_ifeval, load_multi_if, load_sysbench
from reverso.evaluate.metrics import TurnScore, flatten, multi_if_metrics, score_sessions, sysbench_metrics
from reverso.evaluate.suites import build_suites
from reverso.prompts import turn_messages

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "official"


def turn(*passed: bool) -> TurnScore:
    return TurnScore(tuple(f"c{i}" for i in range(len(passed))), tuple(passed), tuple(passed))


def test_suites_never_overlap_training_sessions() -> None:
    corpus = load_seed(REPO / "data/seed")
    training = build_sessions(corpus, "train", 200, 13, turns=3, system_constraints=3, turn_constraints=1,
                              cumulative=True)
    suites = build_suites(EvaluateParams(), REPO / "data/seed")
    assert set(suites) == {"ifeval", "multi_if", "sysbench"}
    train_texts = {t.user for s in training for t in s.turns} | {s.system for s in training}
    for sessions in suites.values():
        for session in sessions:
            assert session.system not in train_texts
            assert not {t.user for t in session.turns} & train_texts


def test_suite_shapes() -> None:
    params = EvaluateParams()
    suites = build_suites(params, REPO / "data/seed")
    assert len(suites["ifeval"]) == params.suites.ifeval and all(len(s.turns) == 1 for s in suites["ifeval"])
    assert all(len(s.turns) == params.multi_if_turns for s in suites["multi_if"])
    assert all(len(s.system_constraints) == params.sysbench_constraints and len(s.turns) == params.sysbench_turns
               for s in suites["sysbench"])


def test_multi_if_per_turn_mean_and_average() -> None:
    scores = [[turn(True), turn(True, False)], [turn(False), turn(True, True)]]
    result = multi_if_metrics(scores)
    assert result["turn_1"]["prompt_strict"] == 0.5 and result["turn_2"]["instruction_strict"] == 0.75
    assert result["turn_1"]["mean"] == pytest.approx(0.5)
    assert result["average"] == pytest.approx((0.5 + (0.5 + 0.5 + 0.75 + 0.75) / 4) / 2)


def test_sysbench_csr_isr_ssr() -> None:
    # session 1: turns 1-2 perfect, turn 3 fails -> stable run 2/3; session 2: fails at turn 1 -> 0/3
    scores = [[turn(True, True), turn(True), turn(False, True)], [turn(False), turn(True), turn(True)]]
    result = sysbench_metrics(scores)
    assert result["csr"] == pytest.approx(6 / 8)
    assert result["isr"] == pytest.approx(4 / 6)
    assert result["ssr"] == pytest.approx((2 / 3 + 0) / 2)


def test_flatten_keeps_numbers_only() -> None:
    assert flatten({"a": {"b": 1, "c": "x"}, "d": 0.5, "e": True}) == {"a.b": 1.0, "d": 0.5}


def test_ifeval_loader_reads_official_rows_and_scores_them() -> None:
    loaded = load_ifeval(FIXTURES / "ifeval_input_data.jsonl")
    assert len(loaded.sessions) == 3 and not loaded.unsupported
    session = loaded.sessions[1]
    assert [c.id for c in session.turns[0].constraints] == ["length_constraints:number_words", "startend:end_checker"]
    messages = turn_messages(session, 0, [])
    assert [m.role for m in messages] == ["user"]  # official prompts state their own rules
    (score,), = score_sessions([session], [["A tall white tower by the sea. That is all."]])
    assert score.strict == (True, True)


def test_ifbench_unknown_ids_are_reported_not_skipped() -> None:
    loaded = load_ifbench(FIXTURES / "ifbench_test.jsonl")
    assert len(loaded.sessions) == 1
    assert loaded.unsupported and "count:emoji_exact_two" in loaded.unsupported[0]["reason"]


def test_multi_if_loader_turns_and_kwargs() -> None:
    loaded = load_multi_if(FIXTURES / "multi_if.csv")
    assert not loaded.unsupported and len(loaded.sessions) == 2
    first = loaded.sessions[0]
    assert [t.user for t in first.turns] == ["Tell me about rivers without commas.",
                                             "Now add a title in double angular brackets."]
    assert [c.id for c in first.turns[1].constraints] == ["punctuation:no_comma", "detectable_format:title"]
    assert loaded.sessions[1].turns[0].constraints[0].kwargs == {"num_words": 30, "relation": "less than"}


def test_sysbench_loader_routes_soft_criteria_to_the_judge() -> None:
    loaded = load_sysbench(FIXTURES / "sysbench.json")
    # Either the engine knows soft:criteria (then the session loads) or the row is reported.
    assert len(loaded.sessions) + len(loaded.unsupported) == 1
    if loaded.unsupported:
        assert "soft" in loaded.unsupported[0]["reason"]
    else:
        assert loaded.sessions[0].turns[0].constraints[0].id == "soft:criteria"
