"""Pair builders and the Great Expectations gate, on real constraint checks."""

from __future__ import annotations

import pytest

from reverso import constraints as engine
from reverso.config import ReverseParams
from reverso.contracts import Message, Response, SamplerInfo, Session, Turn
from reverso.pairs.builders import Sample, dedupe_by_vector, dpo_pair, rpo_pairs
from reverso.pairs.validate import GateSettings, ValidationFailed, reverify, validate_pair_sets
from reverso.reverse import judge_response

SPECS = [
    {"id": "detectable_format:title", "kwargs": {}},
    {"id": "punctuation:no_comma", "kwargs": {}},
    {"id": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 10}},
    {"id": "keywords:existence", "kwargs": {"keywords": ["river"]}},
    {"id": "startend:end_checker", "kwargs": {"end_phrase": "Bye."}},
]
TEXTS = [
    "<<T>> river, flows. Bye.",                                                # 1 0 1 1 1
    "a long text with many many words and more words here and there yes",      # 0 1 0 0 0
    "another long text with lots of words and more words here and there",      # same vector as 1
    "river Bye.",                                                              # 0 1 1 1 1
    "<<Same>> short and no keyword",                                          # 1 1 1 0 0
]


def make_session() -> Session:
    return Session(session_id="s1", system="You are a guide.", system_constraints=SPECS,
                   turns=[Turn(user="Tell me about rivers.")], split="train", seed=1)


def make_samples(texts: list[str] = TEXTS) -> tuple[Session, list[Sample]]:
    session = make_session()
    samples = []
    for index, text in enumerate(texts):
        response = Response(session_id="s1", turn=0, sample_idx=index, history=[], text=text, model="m",
                            sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0),
                            finish_reason="stop", prompt_tokens=5, completion_tokens=5)
        verdict, reason = judge_response(session, response, ReverseParams())
        assert verdict is not None, reason
        samples.append(Sample(response, verdict))
    return session, samples


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


def test_cap_per_session_is_reproducible() -> None:
    import random

    from reverso.pairs import cap_per_session

    session, samples = make_samples()
    pairs = rpo_pairs(session, samples, 1)
    capped = cap_per_session(pairs, 3, random.Random(0))
    assert len(capped) == 3 and capped == cap_per_session(pairs, 3, random.Random(0))
    assert cap_per_session(pairs, 100, random.Random(0)) == pairs
