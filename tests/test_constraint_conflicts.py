"""Sampled constraint sets never contradict themselves, reversed or not (issue 13, item 2).

- every pair of sampleable types, in all four original/reversed combinations, either is kept apart
  by the sampler or has a witness response that passes both (exhaustive over type pairs);
- known contradictions are reported by ``find_conflicts`` with a readable reason;
- sampled sets (property test) have no conflict under any reversal and a witness for the
  original set and for random reversal mixes.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY

SAMPLED = sorted(cid for cid, t in REGISTRY.items() if t.sampled and t.verifiable and t.reversible)
CONTEXT = engine.CheckContext(prompt="Tell me about rivers.")


def _instance(cid: str, seed: int) -> engine.Constraint:
    return engine.make(cid, REGISTRY[cid].sample(random.Random(seed), CONTEXT))


def _forms(c: engine.Constraint) -> list[engine.Constraint]:
    return [c, engine.reverse(c)]


def _passes(constraints: list[engine.Constraint], text: str) -> bool:
    return all(v.passed for v in engine.check_all(constraints, text, CONTEXT))


@pytest.mark.parametrize("first", SAMPLED)
def test_every_pair_the_sampler_allows_has_a_witness_in_every_reversal(first: str) -> None:
    failures = []
    for second in SAMPLED:
        if second <= first or not engine.compatible([_instance(first, 0)], second):
            continue
        for seed in (0, 1):
            a, b = _instance(first, seed), _instance(second, seed + 7)
            if engine.find_conflicts([a, b], any_reversal=True):
                continue  # the sampler never puts these two together
            for pair in itertools.product(_forms(a), _forms(b)):
                witness = engine.build_witness(list(pair), CONTEXT)
                if witness is None or not _passes(list(pair), witness):
                    failures.append(pair)
    assert not failures, f"{len(failures)} allowed pairs without a witness, e.g. {failures[:3]}"


def _c(cid: str, **kwargs: object) -> engine.Constraint:
    return engine.make(cid, kwargs)


KNOWN_CONTRADICTIONS = [
    (_c("reverso:no_digits"), _c("reverso:numbered_list", num_items=3)),
    (_c("reverso:no_digits"), _c("detectable_format:multiple_sections", section_spliter="SECTION", num_sections=2)),
    (_c("reverso:no_capitals"), _c("detectable_format:multiple_sections", section_spliter="Section", num_sections=2)),
    (_c("change_case:english_lowercase"), _c("detectable_format:multiple_sections", section_spliter="SECTION",
                                             num_sections=2)),
    (_c("change_case:capital_word_frequency", capital_relation="less than", capital_frequency=2),
     _c("detectable_format:multiple_sections", section_spliter="SECTION", num_sections=2)),
    (_c("reverso:line_count", bound="at most", limit=1), _c("detectable_format:number_bullet_lists", num_bullets=3)),
    (_c("length_constraints:number_words", relation="less than", num_words=30), _c("reverso:word_range", min_words=40,
                                                                                    max_words=60)),
    (_c("length_constraints:number_words", relation="at least", num_words=75),
     _c("reverso:character_count", bound="at most", limit=250)),
    (_c("detectable_format:json_format"), _c("reverso:starts_with", phrase="Sure,")),
    (_c("punctuation:no_comma"), _c("reverso:starts_with", phrase="Sure,")),
    (_c("reverso:no_first_person"), _c("startend:end_checker", end_phrase="Is there anything else I can help with?")),
    (_c("reverso:question_marks", bound="at most", limit=0), _c("reverso:ends_with_question")),
    (_c("keywords:frequency", keyword="river", frequency=1, relation="less than"), _c("reverso:must_mention",
                                                                                      phrase="river")),
    (_c("reverso:json_keys", keys=["answer", "tips"]), _c("punctuation:no_comma")),
    (_c("reverso:paragraph_count", bound="more than", limit=3), _c("reverso:line_count", bound="at most", limit=3)),
]


@pytest.mark.parametrize("pair", KNOWN_CONTRADICTIONS, ids=lambda p: f"{p[0].id}+{p[1].id}")
def test_known_contradictions_are_reported_with_a_reason(pair: tuple[engine.Constraint, ...]) -> None:
    reasons = engine.find_conflicts(list(pair))
    assert reasons and all(isinstance(r, str) and "(" in r for r in reasons)
    assert not engine.compatible([pair[0]], pair[1].id) or engine.find_conflicts(list(pair), any_reversal=True)


def test_find_conflicts_takes_specs_and_passes_satisfiable_sets() -> None:
    specs = [{"id": "reverso:no_digits", "kwargs": {}}, {"id": "reverso:numbered_list", "kwargs": {"num_items": 2}}]
    assert engine.find_conflicts(specs)
    assert engine.find_conflicts([specs[0], {"id": "punctuation:no_comma"}]) == []
    assert engine.find_conflicts([{"id": "soft:tone", "kwargs": {"text": "Be formal."}}, specs[0]]) == []


def test_very_is_not_every_for_the_conflict_relation() -> None:
    # "never use the word 'very'" and an end phrase containing "every" are compatible
    pair = [_c("reverso:must_not_mention", phrase="very"), _c("startend:end_checker", end_phrase="Every day.")]
    assert engine.find_conflicts(pair) == []
    assert engine.build_witness(pair) is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), count=st.integers(6, 12), mask=st.integers(0, 2**12 - 1))
def test_sampled_sets_have_witnesses_original_and_reversed(seed: int, count: int, mask: int) -> None:
    picked = engine.sample_set(random.Random(seed), count)
    assert engine.find_conflicts(picked, any_reversal=True) == []
    mixed = [engine.reverse(c) if mask >> i & 1 else c for i, c in enumerate(picked)]
    for form in (picked, mixed):
        witness = engine.build_witness(form, CONTEXT)
        assert witness is not None and _passes(form, witness), form


def test_audit_of_default_collect_settings_finds_nothing() -> None:
    from reverso.config import CollectParams
    from reverso.constraints.audit import audit

    seed_dir = Path(__file__).resolve().parents[1] / "data" / "seed"
    report = audit(CollectParams(), seed_dir, sets=15, reversals=1)
    assert report["sets"] == 15 and report["forms_checked"] >= 45
    assert (report["contradictory"], report["witness_failures"]) == (0, 0), report["examples"]
