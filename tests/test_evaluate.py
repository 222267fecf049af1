"""Suites, metric definitions and official-format loaders."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import ConfigError, EvaluateParams, SuiteSizes, load_params
from reverso.constraints.judge import Judge
from reverso.contracts import Message
from reverso.evaluate.loaders import load_ifbench, load_ifeval, load_multi_if, load_sysbench
from reverso.evaluate.intervals import intervals
from reverso.evaluate.metrics import (
    SUITE_METRICS,
    TurnScore,
    flatten,
    ifeval_metrics,
    multi_if_metrics,
    score_sessions,
    sysbench_metrics,
)
from reverso.evaluate.scoring import confidence_report, metrics_from_scores
from reverso.evaluate.stats import bootstrap_ci, halfwidth, paired_difference
from reverso.evaluate.suites import CARRY_OVER, build_suites
from reverso.prompts import RULES_HEADER, session_constraints, turn_messages

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "official"


def turn(*passed: bool) -> TurnScore:
    return TurnScore(tuple(f"c{i}" for i in range(len(passed))), tuple(passed), tuple(passed))


def test_suites_never_overlap_training_sessions() -> None:
    corpus = load_seed(REPO / "data/seed")
    training = build_sessions(corpus, "train", 200, 13, turns=3, system_constraints=3, turn_constraints=1,
                              cumulative=True)
    suites = build_suites(EvaluateParams(suites=SuiteSizes(ifeval=100, multi_if=100, sysbench=100)), REPO / "data/seed")
    assert set(suites) == {"ifeval", "multi_if", "sysbench"}
    train_texts = {t.user for s in training for t in s.turns} | {s.system for s in training}
    for sessions in suites.values():
        for session in sessions:
            assert session.system not in train_texts
            assert not {t.user for t in session.turns} & train_texts


def _normalised(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_train_validation_and_test_pools_share_no_text_exact_or_normalised() -> None:
    """The seed corpus' three pools are disjoint in persona and query text (exact and normalised), and
    every suite drawn from a pool uses that pool's texts only."""
    corpus = load_seed(REPO / "data/seed")
    pools = {}
    for pool in ("train", "validation", "eval"):
        personas, queries = corpus.portion(pool)
        pools[pool] = {"exact": {p.system for p in personas} | {q.text for q in queries}}
        pools[pool]["normalised"] = {_normalised(t) for t in pools[pool]["exact"]}
        assert len(pools[pool]["normalised"]) == len(pools[pool]["exact"])  # no near-duplicates inside a pool
    for a, b in (("train", "validation"), ("train", "eval"), ("validation", "eval")):
        for kind in ("exact", "normalised"):
            assert not pools[a][kind] & pools[b][kind], f"{a} and {b} share {kind} text"
    params = EvaluateParams(suites=SuiteSizes(ifeval=60, multi_if=30, sysbench=10))
    for pool in ("validation", "eval"):
        persona_texts = {p.system for p in corpus.portion(pool)[0]}
        query_texts = {q.text for q in corpus.portion(pool)[1]}
        for sessions in build_suites(params, REPO / "data/seed", pool=pool).values():
            for session in sessions:
                assert session.system.split("\n")[0] in persona_texts
                assert all(any(t.user.startswith(q) for q in query_texts) for t in session.turns)


def test_suite_shapes() -> None:
    params = EvaluateParams(suites=SuiteSizes(ifeval=40, multi_if=20, sysbench=20))
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


def test_sysbench_csr_isr_ssr_hand_checked() -> None:
    # SysBench (paper + released utils.py / tab4_turn.py), worked by hand:
    # session 1: [4/4, 1/1, 1/2] -> turns 1-2 satisfied, turn 3 not -> stable run 2 of 3 turns
    # session 2: [0/1, 1/1, 1/1] -> fails at turn 1 -> stable run 0
    scores = [[turn(True, True, True, True), turn(True), turn(False, True)], [turn(False), turn(True), turn(True)]]
    result = sysbench_metrics(scores)
    # CSR is macro-averaged over the 6 instructions: (1 + 1 + 0.5 + 0 + 1 + 1) / 6, not pooled 8/10
    assert result["csr"] == pytest.approx(4.5 / 6)
    assert result["isr"] == pytest.approx(4 / 6)  # instructions with every constraint satisfied
    assert result["ssr"] == pytest.approx((2 / 3 + 0 / 3) / 2)  # consecutive satisfied turns / turns
    assert result["session_all_pass"] == 0.0  # no session satisfied every turn


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


def test_ifbench_rows_load_and_score_unknown_ids_are_reported_not_skipped() -> None:
    loaded = load_ifbench(FIXTURES / "ifbench_test.jsonl")
    assert [s.session_id for s in loaded.sessions] == ["ifbench-1", "ifbench-2"]
    assert loaded.unsupported and "count:emoji_exact_two" in loaded.unsupported[0]["reason"]
    answers = [["apple\nbanana\ncherry"], ["Calm water and reeds, but cold, so 2 swans swim 3 laps."]]
    first, second = (turns[0] for turns in score_sessions(loaded.sessions, answers))
    assert first.strict == (True,) and second.strict == (True, True)
    assert ifeval_metrics([[first], [second]])["prompt_strict"] == 1.0


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
    assert len(loaded.sessions) == 1 and not loaded.unsupported
    assert [c.id for c in loaded.sessions[0].turns[0].constraints] == ["soft:criteria", "soft:criteria"]


def test_sysbench_released_shape_loads(tmp_path: Path) -> None:
    item = {"system_id": 7, "system_prompt": "You are a tour guide.", "rounds_related": True,
            "messages": [{"role": "system", "content": "You are a tour guide."},
                         {"role": "user", "content": "Where to eat?"}, {"role": "assistant", "content": "ref"},
                         {"role": "user", "content": "And to sleep?"}, {"role": "assistant", "content": "ref"}],
            "prompt_infos": {"Where to eat?": {"criteria": {"1": {"criteria_id": 1, "criteria_content": "Polite",
                                                                  "criteria_type": "Style"}}},
                             "And to sleep?": {"criteria": {"1": {"criteria_id": 1, "criteria_content": "In role",
                                                                  "criteria_type": "Role"}}}}}
    (tmp_path / "sb.json").write_text(json.dumps([item]))
    loaded = load_sysbench(tmp_path / "sb.json")
    session = loaded.sessions[0]
    assert session.session_id == "sysbench-7" and [t.user for t in session.turns] == ["Where to eat?", "And to sleep?"]
    assert session.turns[1].constraints[0].kwargs["text"] == "In role"


class ScriptedBackend:
    """A chat backend that fails every criterion (schema-valid JSON) and records what it was shown."""

    name = "scripted"

    def __init__(self, answer: str | None = None) -> None:
        self.seen: list[str] = []
        self.answer = answer

    def complete(self, messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        self.seen.append(user)
        if self.answer is not None:
            return self.answer
        rules = user.split("INSTRUCTIONS:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        return json.dumps({"verdicts": [{"index": i, "passed": False, "reason": "no"}
                                        for i in range(1, len(rules) + 1)]})


def test_unjudged_sysbench_criteria_are_not_scored_never_a_number() -> None:
    session = load_sysbench(FIXTURES / "sysbench.json").sessions[0]
    # Before: criteria were silently dropped, so the answer "x" scored SSR 1.0.
    result = sysbench_metrics(score_sessions([session], [["x", "x"]]))
    assert result["csr"] is None and result["isr"] is None and result["ssr"] is None
    assert "evaluate.judge" in result["not_scored"]
    assert flatten({"sysbench": result}) == {}  # nothing numeric reaches eval.json / MLflow / promotion


def test_judged_sysbench_criteria_score_and_the_judge_sees_system_and_history() -> None:
    session = load_sysbench(FIXTURES / "sysbench.json").sessions[0]
    backend = ScriptedBackend()
    result = sysbench_metrics(score_sessions([session], [["x", "y"]], Judge(backend)))
    assert result == {"csr": 0.0, "isr": 0.0, "ssr": 0.0, "session_all_pass": 0.0}
    assert "You are a polite concierge." in backend.seen[0] and "assistant: x" in backend.seen[1]


def test_judge_answers_that_never_fit_the_schema_leave_the_suite_not_scored() -> None:
    session = load_sysbench(FIXTURES / "sysbench.json").sessions[0]
    result = sysbench_metrics(score_sessions([session], [["x", "y"]], Judge(ScriptedBackend("not json"))))
    assert result["isr"] is None and "judge answers never fit" in result["not_scored"]


def test_multi_if_suite_states_each_instruction_once_and_scores_carry_over() -> None:
    suite = build_suites(EvaluateParams(suites=SuiteSizes(ifeval=0, multi_if=5, sysbench=0)), REPO / "data/seed")
    for session in suite["multi_if"]:
        assert len(session.turns) == 3
        history: list[Message] = []
        for index in range(3):
            messages = turn_messages(session, index, history)
            history = [*messages[1:], Message(role="assistant", content="ok")]
        system = messages[0]
        assert system.role == "system" and RULES_HEADER not in system.content  # persona only
        users = [m.content for m in messages if m.role == "user"]
        for index, turn_ in enumerate(session.turns):
            rule = turn_.user.split(CARRY_OVER, 1)[1]
            # stated once, in the user message of the turn that introduces it
            assert sum(rule in m.content for m in messages) == 1 and rule in users[index]
        assert len(session_constraints(session, 2)) == 3  # turn 3 is scored on every earlier instruction
        score = score_sessions([session], [["", "", "answer"]])[0][2]
        assert len(score.constraint_ids) == 3


def random_scores(rng: random.Random, units: int, turns: int, skill: float) -> list[list[TurnScore]]:
    def one(k: int) -> TurnScore:
        strict = tuple(rng.random() < skill for _ in range(k))
        return TurnScore(tuple(f"c{i}" for i in range(k)), strict, tuple(a or rng.random() < 0.3 for a in strict))
    return [[one(rng.randint(1, 3)) for _ in range(turns)] for _ in range(units)]


@pytest.mark.parametrize(("suite", "turns"), [("ifeval", 1), ("multi_if", 3), ("sysbench", 5)])
def test_bootstrap_point_estimates_equal_the_suite_metrics(suite: str, turns: int) -> None:
    scores = random_scores(random.Random(1), 40, turns, 0.6)
    metrics = flatten({suite: SUITE_METRICS[suite](scores)})
    found = intervals(suite, scores, resamples=300, confidence=0.95, seed=3)
    assert found and all(ci["mean"] == pytest.approx(metrics[key]) for key, ci in found.items())
    assert all(ci["ci_low"] <= ci["mean"] <= ci["ci_high"] and ci["n"] == 40 for ci in found.values())
    assert found == intervals(suite, scores, resamples=300, confidence=0.95, seed=3)  # seeded


def test_bootstrap_ci_and_paired_difference_basics() -> None:
    ci = bootstrap_ci([1, 0] * 200, seed=0)
    assert ci["mean"] == 0.5 and ci["n"] == 400 and 0.04 < halfwidth(ci) <= 0.05 + 1e-9  # 1/400 steps
    assert bootstrap_ci([])["mean"] is None
    same = paired_difference([1, 0, 1, 1], [1, 0, 1, 1])
    assert same["mean"] == same["ci_low"] == same["ci_high"] == 0.0
    with pytest.raises(ValueError, match="same units"):
        paired_difference([1, 0], [1, 0, 1])


def test_paired_difference_is_tighter_than_comparing_two_intervals() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.5).astype(float)
    flip = rng.random(400) < 0.08  # the policy fixes 8 % of the prompts and keeps the rest
    policy = np.where(flip, 1.0, base)
    diff = paired_difference(policy, base, seed=1)
    assert diff["ci_low"] > 0  # a real, small improvement is detected on the same prompts ...
    a, b = bootstrap_ci(policy, seed=1), bootstrap_ci(base, seed=1)
    assert a["ci_low"] < b["ci_high"]  # ... that two overlapping unpaired intervals would miss


def test_powered_suite_sizes_give_ci_halfwidths_of_at_most_5_points() -> None:
    from pathlib import Path

    from reverso.config import recipe_overrides

    repo = Path(__file__).resolve().parents[1]
    sizes = load_params(repo / "missing.yaml", recipe_overrides(repo / "configs/eval/powered.yaml")).evaluate.suites
    assert (sizes.ifeval, sizes.multi_if, sizes.sysbench) == (400, 400, 300)  # the recipe; the defaults are make run's demo
    # A proportion at 0.5 (the widest case) over n prompts; a session's score lies in [0, 1], so a
    # session suite is bounded the same way even when all of a session's turns agree.
    for n in (sizes.ifeval, sizes.multi_if):
        assert 1.96 * 0.5 / n**0.5 <= 0.05
    # SysBench ISR averages 5 turns per session: simulated at p = 0.5 with turns strongly correlated
    # (each turn copies a per-session coin with probability 0.7), the CI is still within +-5 points.
    rng = random.Random(0)
    scores = []
    for _ in range(sizes.sysbench):
        shared = rng.random() < 0.5
        scores.append([turn(shared if rng.random() < 0.7 else rng.random() < 0.5) for _ in range(5)])
    isr = intervals("sysbench", scores, resamples=2000, confidence=0.95, seed=0)["sysbench.isr"]
    assert halfwidth(isr) <= 0.05


def test_results_carry_cis_paired_differences_and_power() -> None:
    rng = random.Random(2)
    scores = {who: {"ifeval": random_scores(rng, 30, 1, skill), "multi_if": random_scores(rng, 20, 3, skill)}
              for who, skill in (("base", 0.4), ("policy", 0.6), ("champion", 0.5))}
    report = confidence_report(scores, EvaluateParams())
    assert set(report["ci"]) == {"base", "policy", "champion"}
    assert set(report["paired"]) == {"policy-base", "policy-champion"}
    diff = report["paired"]["policy-champion"]["multi_if.average"]
    assert diff["n"] == 20 and diff["ci_low"] <= diff["mean"] <= diff["ci_high"]
    assert report["power"]["wider_than_target"]  # 20-30 units cannot give +-5 points: flagged
    assert report["bootstrap"]["units"] == {"ifeval": "prompts", "multi_if": "sessions"}
    no_champion = confidence_report({k: v for k, v in scores.items() if k != "champion"}, EvaluateParams())
    assert set(no_champion["paired"]) == {"policy-base"}


HELD_OUT = ["punctuation:no_comma", "detectable_format:title", "reverso:no_digits", "keywords:existence"]


def _ids(sessions: list) -> set[str]:
    return {c.id for s in sessions for t in range(len(s.turns)) for c in session_constraints(s, t)}


def test_ood_suite_draws_only_held_out_types_and_the_others_never_do() -> None:
    params = EvaluateParams(suites=SuiteSizes(ifeval=30, multi_if=10, sysbench=5, ood=24),
                            held_out_types=HELD_OUT)
    suites = build_suites(params, REPO / "data/seed")
    assert len(suites["ood"]) == 24 and _ids(suites["ood"]) <= set(HELD_OUT)
    assert len(_ids(suites["ood"])) >= 3  # the suite spreads over the held-out types
    assert {len(s.system_constraints) for s in suites["ood"]} == {1, 2, 3}
    for name in ("ifeval", "multi_if", "sysbench"):
        assert not _ids(suites[name]) & set(HELD_OUT), name
    training = build_sessions(load_seed(REPO / "data/seed"), "train", 60, 13, turns=2, system_constraints=8,
                              turn_constraints=1, cumulative=True, exclude=HELD_OUT)
    assert _ids(training) and not _ids(training) & set(HELD_OUT)  # collect's pool minus the held-out set
    (scored,) = [score_sessions(suites["ood"][:1], [["no digits, a comma"]])]
    metrics = metrics_from_scores({"ifeval": scored, "ood": scored})
    assert metrics["ood"] == metrics["ifeval"]  # scored with IFEval's four accuracies


def test_held_out_types_are_checked_at_load(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("collect:\n  held_out_types: [punctuation:no_comma]\n"
                      "evaluate:\n  held_out_types: [punctuation:no_comma, detectable_format:title]\n")
    with pytest.raises(ConfigError, match="not in collect.held_out_types"):
        load_params(params)
    with pytest.raises(ConfigError, match="not sampleable"):
        load_params(params, ["collect.held_out_types=[format:emoji]"])  # IFBench's: evaluation only
    with pytest.raises(ConfigError, match="suites.ood needs"):
        load_params(tmp_path / "none.yaml", ["evaluate.suites.ood=10"])
    both = load_params(params, ["collect.held_out_types=[punctuation:no_comma, detectable_format:title]"])
    assert both.evaluate.held_out_types == ["detectable_format:title", "punctuation:no_comma"]


def test_collect_quarantines_user_sessions_with_held_out_types(tmp_path: Path) -> None:
    from reverso.collect.sessions import read_user_sessions

    path = tmp_path / "s.jsonl"
    rows = [{"session_id": sid, "system": "Be kind.", "system_constraints": [{"id": cid, "kwargs": {}}],
             "turns": [{"user": "Hi."}], "split": "train", "seed": 1}
            for sid, cid in (("a", "punctuation:no_comma"), ("b", "not:punctuation:no_comma"),
                             ("c", "detectable_format:title"))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_user_sessions(path, held_out=["punctuation:no_comma"])
    assert [s.session_id for s in result.rows] == ["c"]
    assert all("held out of training" in q.reason for q in result.quarantined)


def test_every_answer_keeps_its_finish_reason_and_length(tiny_model_dir: Path) -> None:
    """A cut answer is visible per answer and per model: finish_reason "length" at the cap, its token count."""
    from reverso.evaluate import evaluate_models

    params = EvaluateParams(suites=SuiteSizes(ifeval=2, multi_if=1, sysbench=0), max_new_tokens=3, backend="hf")
    suites = build_suites(params, REPO / "data/seed")
    finish: dict = {}
    results, outputs, _ = evaluate_models({"tiny": (tiny_model_dir, None)}, suites, params, finish=finish)
    answers = [a for sessions in finish["tiny"].values() for session in sessions for a in session]
    assert len(answers) == 2 + params.multi_if_turns  # every turn of every session
    assert [len(s) for s in finish["tiny"]["multi_if"]] == [len(t) for t in outputs["tiny"]["multi_if"]]
    assert all(a["finish_reason"] in ("stop", "length") and 0 < a["tokens"] <= 3 for a in answers)
    cut = sum(a["finish_reason"] == "length" for a in answers)
    summary = results["tiny"]["truncation"]
    assert summary["all"] == {"cut": round(cut / len(answers), 4), "answers": len(answers),
                              "mean_tokens": round(sum(a["tokens"] for a in answers) / len(answers), 1)}
    assert summary["ifeval"]["answers"] == 2
