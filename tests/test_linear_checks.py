"""Scoring time is linear in the response length: no check is quadratic on a hostile answer.

The linear rewrites of IFEval's regexes find exactly what the regexes find (property tests on
short texts); every check and every shared per-response feature, on 100k characters of a repeated
hostile unit, takes at most ``BOUND`` times its time on 1k characters: ~100 is linear, ~10,000
quadratic. A ratio of times on the same machine in the same run, never an absolute timing.
(bench/constraints.py reports the same on 200k characters.)
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY
from reverso.constraints.text import count_line_items
from reverso.constraints.types_basic import titles
from reverso.constraints.types_extra import _NUMBERED
from reverso.constraints.types_ifeval import count_placeholders

from support import stress

BOUND = 1000  # linear: ~100 (100k / 1k), more on a busy machine; quadratic: ~10,000
SIZES = {"small": 1_000, "large": 100_000}
PIECES = ["*", "-", " ", "\n", "\t", "a", "<", "<<", ">>", ">", "[", "]", "**", "\r", "1", "2.", ")", "9"]
SHORT = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=SHORT)
def test_linear_rewrites_find_what_the_regexes_find(text: str) -> None:
    assert titles(text) == re.findall(r"<<[^\n]+>>", text)
    assert count_placeholders(text) == len(re.findall(r"\[.*?\]", text))
    for pattern in (r"\*[^\*].*", r"-.*", _NUMBERED.pattern):
        expected = len(re.findall(r"^\s*" + pattern + "$" * pattern.endswith(".*"), text, flags=re.MULTILINE))
        assert count_line_items(text, re.compile(pattern)) == expected, (pattern, text)


def _instances() -> list[engine.Constraint]:
    context = engine.CheckContext(prompt="Tell me about rivers.")
    return [engine.make(cid, ctype.sample(random.Random(0), context))
            for cid, ctype in sorted(REGISTRY.items()) if ctype.verifiable]


@pytest.mark.slow
@pytest.mark.parametrize("name", stress.FEATURES)
def test_shared_response_features_are_linear(name: str) -> None:
    slow = []
    for unit in stress.UNITS:
        # min of two tries: a ratio of two short timings can catch a scheduler hiccup on a shared machine
        ratio = stress.feature_growth(name, unit, **SIZES)
        if ratio >= BOUND:
            ratio = min(ratio, stress.feature_growth(name, unit, **SIZES))
        if ratio >= BOUND:
            slow.append((unit, round(ratio)))
    assert not slow, f"{name} grows faster than linearly on: {slow}"


@pytest.mark.slow
def test_every_check_is_linear_in_the_response_length() -> None:
    slow = []
    for constraint in _instances():
        for unit in stress.UNITS:
            ratio = stress.check_growth(constraint, unit, **SIZES)
            if ratio >= BOUND:  # as above: the smaller of two tries
                ratio = min(ratio, stress.check_growth(constraint, unit, **SIZES))
            if ratio >= BOUND:
                slow.append((constraint.id, unit, round(ratio)))
    assert not slow, f"checks that grow faster than linearly: {slow}"
