"""Pair builders and the Great Expectations gate, on real constraint checks."""

from __future__ import annotations

import json

import pytest

from reverso import constraints as engine
from reverso.config import ReverseParams
from reverso.contracts import Message, Response, SamplerInfo, Session, Turn
from reverso.pairs.builders import Sample, couple_key, dedupe_by_vector, dpo_pair, dpo_paper_pairs, rpo_pairs
from reverso.pairs.validate import GateSettings, ValidationFailed, reverify, validate_pair_sets
from reverso.reverse import judge_response

from support.pairs import SPECS, TEXTS, make_samples


def test_verdicts_and_reversal_make_each_response_perfect() -> None:
    _, samples = make_samples()
    assert [list(s.vector) for s in samples[:2]] == [[True, False, True, True, True], [False, True, False, False, False]]
    for sample in samples:
        reversed_ = [engine.parse(s.model_dump()) for s in sample.verdict.reversed_constraints]
        assert all(v.passed for v in engine.check_all(reversed_, sample.response.text))


def test_dedupe_keeps_first_of_each_vector() -> None:
    _, samples = make_samples()
    kept = dedupe_by_vector(samples)
    assert [s.response.sample_idx for s in kept] == [0, 1, 3, 4]


def test_rpo_invariant_mirror_pairs_and_gap_threshold() -> None:
    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, g_min=3)
    gaps = {}
    for pair in pairs:
        chosen_fails, rejected_fails = reverify(pair)
        assert chosen_fails == []  # chosen is perfect for its (partly reversed) prompt
        assert len(rejected_fails) == pair.margin >= 3  # rejected fails exactly g constraints
        gaps[(pair.chosen[0].content, pair.rejected[0].content)] = pair.margin
        assert pair.prompt[0].role == "system" and pair.prompt[-1] == Message(role="user", content="Tell me about rivers.")
    # every kept pair appears in both directions with the same margin
    assert all(gaps[(b, a)] == g for (a, b), g in gaps.items())
    assert (TEXTS[0], TEXTS[3]) not in gaps  # they differ on only 2 constraints
    assert (TEXTS[0], TEXTS[1]) in gaps and gaps[(TEXTS[0], TEXTS[1])] == 5


def test_reversed_prompt_states_reversed_rules() -> None:
    session, samples = make_samples()
    pair = next(p for p in rpo_pairs(session, samples, 3) if p.chosen[0].content == TEXTS[1])
    ids = [c.id for c in pair.constraints]
    assert "not:detectable_format:title" in ids and "punctuation:no_comma" in ids
    assert "at least 10" in pair.prompt[0].content or "10 words or more" in pair.prompt[0].content


def test_dpo_baseline_best_vs_worst_on_original_instruction() -> None:
    session, samples = make_samples()
    pair = dpo_pair(session, samples)
    assert pair is not None and pair.builder == "dpo"
    assert pair.chosen[0].content == TEXTS[0] and pair.rejected[0].content == TEXTS[1]
    assert pair.margin == 4 - 1
    tied_session, tied = make_samples([TEXTS[1], TEXTS[2]])
    assert dpo_pair(tied_session, tied) is None


def test_gate_passes_good_pairs(tmp_path) -> None:
    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, 3)
    summary = validate_pair_sets({"rpo": (pairs, ["train"] * len(pairs), None)}, GateSettings(3), tmp_path)["rpo"]
    assert summary["success"] and (tmp_path / "rpo.json").exists()
    docs = tmp_path / "data_docs"
    assert (docs / "index.html").exists() and list((docs / "validations").rglob("*.html"))


def _gate_message(pairs, splits, tmp_path, settings=GateSettings(3)) -> str:
    with pytest.raises(ValidationFailed) as err:
        validate_pair_sets({"rpo": (pairs, splits, None)}, settings, tmp_path)
    return str(err.value)


def test_gate_refuses_corrupted_chosen_naming_row_and_constraint(tmp_path) -> None:
    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, 3)
    bad = pairs[0].model_copy(update={"chosen": [Message(role="assistant", content=pairs[0].chosen[0].content + ", oops")]})
    message = _gate_message([bad, *pairs[1:]], ["train"] * len(pairs), tmp_path)
    assert "row 0" in message and "session s1" in message and "chosen_fails" in message


@pytest.mark.parametrize("breakage", ["duplicate", "same_text", "low_margin", "wrong_margin", "split_leak", "too_long"])
def test_each_expectation_can_fail(tmp_path, breakage: str) -> None:
    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, 3)
    splits = ["train"] * len(pairs)
    settings = GateSettings(3)
    if breakage == "duplicate":
        pairs = [*pairs, pairs[0]]
        splits.append("train")
    elif breakage == "same_text":
        pairs[0] = pairs[0].model_copy(update={"rejected": pairs[0].chosen})
    elif breakage == "low_margin":
        settings = GateSettings(6)
    elif breakage == "wrong_margin":
        pairs[0] = pairs[0].model_copy(update={"margin": pairs[0].margin + 1})
    elif breakage == "split_leak":
        splits[0] = "eval"
    elif breakage == "too_long":
        settings = GateSettings(3, max_tokens=10)
        with pytest.raises(ValidationFailed, match="tokens"):
            validate_pair_sets({"rpo": (pairs, splits, [50] * len(pairs))}, settings, tmp_path)
        return
    assert "failed the validation gate" in _gate_message(pairs, splits, tmp_path, settings)


def test_cap_counts_reply_pairs_and_never_splits_a_couple() -> None:
    import random
    from collections import Counter

    from reverso.pairs import cap_reply_pairs

    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, 1)
    capped = cap_reply_pairs(pairs, 3, random.Random(0))
    couples = Counter(couple_key(p) for p in capped)
    assert len(couples) == 3 and set(couples.values()) == {2}  # 3 reply pairs, each with its mirror
    assert capped == cap_reply_pairs(pairs, 3, random.Random(0))
    assert cap_reply_pairs(pairs, 100, random.Random(0)) == pairs


def test_one_way_builder_keeps_the_direction_better_on_the_original() -> None:
    session, samples = make_samples()
    both = rpo_pairs(session, samples, 3)
    one_way = rpo_pairs(session, samples, 3, one_way=True)
    by_text = {s.response.text: sum(s.vector) for s in samples}
    assert one_way and all(p.builder == "rpo_one_way" for p in one_way)
    assert len({couple_key(p) for p in one_way}) == len(one_way)  # never both directions of a reply pair
    for pair in one_way:
        assert by_text[pair.chosen[0].content] > by_text[pair.rejected[0].content]
        assert reverify(pair)[0] == []  # still the reversed prompt: the chosen passes every rule
    ties = [p for p in both if by_text[p.chosen[0].content] == by_text[p.rejected[0].content]]
    assert len(one_way) == (len(both) - len(ties)) // 2


def test_dpo_paper_builder_takes_every_pair_with_a_count_gap_of_three() -> None:
    session, samples = make_samples()
    pairs = dpo_paper_pairs(session, samples, 3)
    counts = {s.response.text: sum(s.vector) for s in samples}  # 4, 1, 1, 4, 3
    assert [(p.chosen[0].content, p.rejected[0].content) for p in pairs] == [(TEXTS[0], TEXTS[1]), (TEXTS[3], TEXTS[1])]
    original = dpo_pair(session, samples)
    for pair in pairs:
        assert pair.builder == "dpo_paper"
        assert pair.margin == counts[pair.chosen[0].content] - counts[pair.rejected[0].content] == 3
        assert pair.prompt == original.prompt and pair.constraints == original.constraints  # the original rules
    assert dpo_paper_pairs(session, samples, 4) == []  # no gap of 4: ties and small gaps dropped


# --- finished responses only, same caps for both builders, equal budgets, reversed rules reach the model ---

def two_turn_samples(truncated: set[tuple[int, int]] = frozenset()) -> tuple[Session, list[Sample]]:
    """TEXTS answered in both turns of one session; (turn, sample_idx) in ``truncated`` hit the token cap."""
    session = Session(session_id="s1", system="You are a guide.", system_constraints=SPECS,
                      turns=[Turn(user="Tell me about rivers."), Turn(user="And lakes?")], split="train", seed=1)
    samples = []
    for turn in (0, 1):
        for index, text in enumerate(TEXTS):
            response = Response(session_id="s1", turn=turn, sample_idx=index, history=[], text=text, model="m",
                                sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0),
                                finish_reason="length" if (turn, index) in truncated else "stop",
                                prompt_tokens=5, completion_tokens=5)
            verdict, reason = judge_response(session, response, ReverseParams())
            assert verdict is not None, reason
            samples.append(Sample(response, verdict))
    return session, samples


def write_stage_inputs(root, session: Session, samples: list[Sample]):
    from reverso.io import write_jsonl

    paths = root / "sessions.jsonl", root / "responses.jsonl", root / "verdicts.jsonl"
    write_jsonl(paths[0], [session])
    write_jsonl(paths[1], [s.response for s in samples])
    write_jsonl(paths[2], [s.verdict for s in samples])
    return paths


def stage_texts(out_dir, skip: tuple[str, ...] = ("rpo_finish",)) -> set[str]:
    """Every reply text in the stage's pair and example files (rpo_finish pairs cut replies by design)."""
    import json

    texts = set()
    for path in out_dir.rglob("*.jsonl"):
        if "quarantine" in path.name or path.parent.name in skip:
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            replies = [row["completion"]] if "completion" in row else [row["chosen"], row["rejected"]]
            texts |= {reply[0]["content"] for reply in replies}
    return texts


def test_truncated_responses_never_become_pairs_and_are_counted(tmp_path) -> None:
    from reverso.config import PairsParams
    from reverso.pairs import pairs as run_stage

    session, samples = two_turn_samples(truncated={(0, 0), (1, 0)})
    inputs = write_stage_inputs(tmp_path, session, samples)
    metrics = run_stage(PairsParams(), *inputs, tmp_path / "pairs", tmp_path / "pairs.json", tmp_path / "reports")
    assert TEXTS[0] not in stage_texts(tmp_path / "pairs")  # the cut-off reply is neither chosen nor rejected
    assert metrics["truncated_left_out"] == 2 and metrics["responses_used"] == len(samples) - 2
    accounted = metrics["responses_used"] + metrics["truncated_left_out"] + metrics["verdicts_quarantined"]
    assert metrics["verdicts_in"] == accounted
    assert metrics["rpo"]["pairs"] > 0 and metrics["dpo"]["pairs"] > 0
    # rpo_finish is the one set that uses cut replies: as rejected sides only, marked rejected_cut
    finish = [json.loads(line) for split in ("train", "eval") if (tmp_path / "pairs/rpo_finish" / f"{split}.jsonl").exists()
              for line in (tmp_path / "pairs/rpo_finish" / f"{split}.jsonl").read_text().splitlines()]
    cut = [p for p in finish if p["rejected"][0]["content"] == TEXTS[0]]
    assert cut and all(p["rejected_cut"] for p in cut) and metrics["rpo_finish"]["rejected_cut"] == len(
        [p for p in finish if p["rejected_cut"]])
    assert all(p["chosen"][0]["content"] != TEXTS[0] for p in finish)

    allowed = run_stage(PairsParams(allow_truncated=True), *inputs, tmp_path / "all", tmp_path / "all.json",
                        tmp_path / "reports2")
    assert TEXTS[0] in stage_texts(tmp_path / "all") and allowed["truncated_left_out"] == 0


def test_a_turn_whose_responses_were_all_cut_off_gives_no_pairs(tmp_path) -> None:
    from reverso.config import PairsParams
    from reverso.pairs import pairs as run_stage

    every_first_turn = {(0, i) for i in range(len(TEXTS))}
    session, samples = two_turn_samples(truncated=every_first_turn | {(1, 0), (1, 1), (1, 2), (1, 3)})
    metrics = run_stage(PairsParams(), *write_stage_inputs(tmp_path, session, samples), tmp_path / "pairs",
                        tmp_path / "pairs.json", tmp_path / "reports")
    assert metrics["rpo"]["pairs"] == 0 and metrics["dpo"]["pairs"] == 0  # one finished reply pairs with nothing
    assert metrics["truncated_left_out"] == len(samples) - 1
    assert dpo_pair(session, []) is None


def test_finished_only_keeps_groups_and_counts() -> None:
    from reverso.pairs import finished_only

    _, samples = two_turn_samples(truncated={(0, 1)})
    groups = {("s1", 0): samples[:5], ("s1", 1): samples[5:]}
    kept, left_out = finished_only(groups, allow_truncated=False)
    assert left_out == 1 and [s.response.sample_idx for s in kept[("s1", 0)]] == [0, 2, 3, 4]
    assert finished_only(groups, allow_truncated=True) == (groups, 0)


def test_caps_apply_to_both_builders_alike() -> None:
    from reverso.config import PairsParams
    from reverso.pairs import build_pair_sets

    session, samples = two_turn_samples()
    groups = {("s1", 0): samples[:5], ("s1", 1): samples[5:]}
    free, dropped = build_pair_sets(PairsParams(max_pairs_per_session=None), {"s1": session}, groups)
    assert len(free["dpo"]) == 2 and len(free["rpo"]) > 2 and set(dropped.values()) == {0}
    capped, dropped = build_pair_sets(PairsParams(max_pairs_per_session=1), {"s1": session}, groups)
    assert len(capped["rpo"]) == 2 and len(capped["dpo"]) == 1  # one reply pair: an RPO couple, one baseline pair
    assert len(capped["rpo_one_way"]) == 1 and len(capped["dpo_paper"]) == 1
    assert dropped["rpo"] == len(free["rpo"]) - 2 and dropped["dpo"] == 1
    again, _ = build_pair_sets(PairsParams(max_pairs_per_session=1), {"s1": session}, groups)
    assert again == capped


def test_equalize_gives_both_sets_the_same_size_per_split() -> None:
    from reverso.pairs import equalize

    session, samples = make_samples()
    rpo = rpo_pairs(session, samples, 1)
    dpo = [dpo_pair(session, samples)] * 3
    gated = {"rpo": (rpo, ["train"] * (len(rpo) - 2) + ["eval"] * 2, list(range(len(rpo)))),
             "dpo": (dpo, ["train", "train", "eval"], None)}
    out, dropped = equalize(gated, seed=7, names=["rpo", "dpo"])
    for name in ("rpo", "dpo"):
        assert [out[name][1].count(split) for split in ("train", "eval")] == [2, 1]
    assert dropped == {"rpo": len(rpo) - 3, "dpo": 0}
    assert all(p in rpo for p in out["rpo"][0]) and out["rpo"][2] == [rpo.index(p) for p in out["rpo"][0]]
    assert equalize(gated, seed=7, names=["rpo", "dpo"]) == (out, dropped)
    alone, untouched = equalize(gated | {"dpo_paper": (dpo, ["train"] * 3, None)}, seed=7, names=["rpo", "dpo"])
    assert alone["dpo_paper"][0] == dpo and untouched["dpo_paper"] == 0  # sets not named keep their size


def test_sessions_without_rendered_rules_are_refused_for_rpo(tmp_path) -> None:
    from reverso.config import PairsParams
    from reverso.io import DataError
    from reverso.pairs import pairs as run_stage

    session, samples = make_samples()
    unrendered = session.model_copy(update={"render_rules": False})
    with pytest.raises(ValueError, match="render_rules"):
        rpo_pairs(unrendered, samples, 3)
    inputs = write_stage_inputs(tmp_path, unrendered, samples)
    with pytest.raises(DataError, match="render_rules: false.*s1"):
        run_stage(PairsParams(), *inputs, tmp_path / "pairs", tmp_path / "pairs.json", tmp_path / "reports")
