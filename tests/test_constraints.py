"""The constraint engine's promise: reversal is the exact complement, for every registered type."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY

EDGE_TEXTS = ["", " ", "\n\n", "\r\n\r\n", "hello, world", "HELLO", "<<Title>>\n* a\n* b", '"quoted"',
              "P.S. thanks", "🙂🙂 emoji only", "ünïcödé tëxt, with commas", '{"a": 1}', "```json\n{}\n```",
              "word " * 500, "Bye."]
TEXTS = st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=400),
                  st.lists(st.sampled_from(["river", ",", "Bye.", "*", "-", "\n", "<<t>>", " ", "P.S.", "a", "E"]),
                           max_size=60).map("".join))


def instances() -> list[engine.Constraint]:
    """Several sampled instances of every verifiable type."""
    found = []
    for cid, ctype in sorted(REGISTRY.items()):
        if not ctype.verifiable:
            continue
        for seed in range(4):
            found.append(engine.make(cid, ctype.sample(random.Random(seed), engine.CheckContext())))
    return found


INSTANCES = instances()


@pytest.mark.parametrize("constraint", INSTANCES, ids=repr)
def test_involution(constraint: engine.Constraint) -> None:
    assert engine.reverse(engine.reverse(constraint)) == constraint
    assert engine.reverse(constraint) != constraint


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_reverse_is_the_exact_complement(text: str) -> None:
    context = engine.CheckContext(prompt="Tell me about rivers.")
    reversed_ = [engine.reverse(c) for c in INSTANCES]
    original = engine.check_all(INSTANCES, text, context)
    flipped = engine.check_all(reversed_, text, context)
    for constraint, a, b in zip(INSTANCES, original, flipped, strict=True):
        assert a.passed != b.passed, (constraint, text)


def test_very_long_input_never_raises() -> None:
    text = ("All work and no play, makes Jack a dull boy. " * 25000)[: 1 << 20]
    verdicts = engine.check_all(INSTANCES, text)
    assert len(verdicts) == len(INSTANCES)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 6))
def test_sampled_sets_have_no_declared_conflicts(seed: int, count: int) -> None:
    picked = engine.sample_set(random.Random(seed), count)
    assert len({c.id for c in picked}) == count
    for index, constraint in enumerate(picked):
        assert engine.compatible(picked[:index], constraint.id)


def test_unknown_id_and_bad_kwargs_name_id_field_and_allowed_values() -> None:
    with pytest.raises(engine.ConstraintError, match="unknown constraint id 'nope:x'"):
        engine.parse({"id": "nope:x"})
    with pytest.raises(engine.ConstraintError) as err:
        engine.parse({"id": "length_constraints:number_words", "kwargs": {"relation": "more", "num_words": 5}})
    assert "kwargs.relation" in str(err.value) and "less than" in str(err.value)
    with pytest.raises(engine.ConstraintError, match="allowed fields"):
        engine.parse({"id": "punctuation:no_comma", "kwargs": {"extra": 1}})


def test_ifeval_null_kwargs_are_ignored() -> None:
    constraint = engine.parse({"id": "length_constraints:number_words",
                               "kwargs": {"relation": "at least", "num_words": 3, "num_highlights": None}})
    assert constraint.kwargs == {"num_words": 3, "relation": "at least"}


def test_every_type_is_listed_with_a_reverse() -> None:
    rows = engine.list_types()
    assert len(rows) == len(REGISTRY)
    assert all(reverse_id and description for _, description, reverse_id in rows)


DEEP_JSON = ["[" * 5000 + "]" * 5000, '{"a": ' * 2000 + "1" + "}" * 2000, "```json\n" + "[" * 1500 + "]" * 1500 + "\n```"]


@pytest.mark.parametrize("text", DEEP_JSON, ids=["array", "object", "fenced"])
def test_deeply_nested_json_is_a_failed_verdict_with_a_reason_never_a_crash(text: str) -> None:
    verdicts = engine.check_all(INSTANCES, text)  # every check, JSON-parsing ones included
    assert len(verdicts) == len(INSTANCES)
    engine.check_all_loose(INSTANCES, text)
    for cid in ("detectable_format:json_format", "reverso:json_keys"):
        kwargs = {"keys": ["a"]} if cid == "reverso:json_keys" else {}
        verdict = engine.check(engine.make(cid, kwargs), text)
        assert not verdict.passed and "nested too deeply" in verdict.reason


def test_deeply_nested_judge_output_is_a_schema_error_not_a_crash() -> None:
    from reverso.constraints.judge import JudgeOutput, parse_json

    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json('{"a": ' * 2000 + "1" + "}" * 2000, JudgeOutput)
