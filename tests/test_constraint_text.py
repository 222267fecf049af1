"""The English a model is trained on says what the checker checks (issue 13, item 3).

One adversarial case per type where words and checks could part ways: whole word vs substring,
case, digits outside 0-9, emojis outside the basic block, language detection. Each case checks
the rendered text of the original and the reversed rule, and the verdicts on a tricky response.
"""

from __future__ import annotations

import random

import pytest

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY


def _c(cid: str, **kwargs: object) -> engine.Constraint:
    return engine.make(cid, kwargs)


def _all_texts(constraint: engine.Constraint) -> list[str]:
    return [engine.describe(constraint, random.Random(seed)) for seed in range(6)]


def _passes(constraint: engine.Constraint, text: str) -> bool:
    return engine.check(constraint, text, engine.CheckContext(prompt="Tell me about rivers.")).passed


# (constraint, tricky response, expected verdict, words every phrasing of the rule must contain)
CASES = [
    (_c("reverso:must_not_mention", phrase="very"), "It rains every day.", True, ["the word"]),
    (_c("reverso:must_not_mention", phrase="very"), "Very well.", False, ["the word"]),
    (_c("reverso:must_mention", phrase="river"), "Rivers are long.", False, ["the word"]),
    (_c("reverso:must_mention", phrase="river"), "The River Thames.", True, ["the word"]),
    (_c("keywords:forbidden_words", forbidden_words=["very"]), "It rains every day.", True, ["words"]),
    (_c("keywords:existence", keywords=["planet"]), "Planetary science.", True, ["longer word"]),
    (engine.reverse(_c("keywords:existence", keywords=["planet"])), "Planetary science.", False, ["longer word"]),
    (_c("keywords:frequency", keyword="river", frequency=2, relation="less than"), "rivers and RIVERS", False,
     ["longer words"]),
    (_c("keywords:letter_frequency", letter="e", let_frequency=2, let_relation="less than"), "EE", False, ["case"]),
    (_c("change_case:capital_word_frequency", capital_frequency=1, capital_relation="less than"), "so I went.", False,
     ["I and OK count"]),
    (_c("reverso:no_capitals"), "hello wörld", True, ["capital letters"]),
    (_c("reverso:no_capitals"), "hello Émile", False, ["capital letters"]),
    (engine.reverse(_c("reverso:no_capitals")), "hallo welt wie geht es dir heute", False, ["capital letter"]),
    (_c("reverso:no_digits"), "three ٣", True, ["0-9"]),
    (engine.reverse(_c("reverso:no_digits")), "three ٣", False, ["0-9"]),
    (_c("reverso:emoji_count", bound="at most", limit=0), "Great ⭐", False, ["emojis"]),
    (_c("reverso:no_urls"), "See example.com for more.", True, ["http"]),
    (engine.reverse(_c("reverso:no_urls")), "See example.com for more.", False, ["http"]),
    (_c("detectable_format:multiple_sections", section_spliter="SECTION", num_sections=2),
     "section 1 a section 2 b", False, ["capitalisation", "at least"]),
    (engine.reverse(_c("detectable_format:multiple_sections", section_spliter="Part", num_sections=2)),
     "Part 1 a. Part 2 b.", False, ["followed by a number"]),
    (_c("reverso:numbered_list", num_items=2), "1. a\n2. b\n\n1. c", False, ["no other numbered lines"]),
    (_c("reverso:character_count", bound="at most", limit=5), "a b c", True, ["spaces included"]),
    (_c("reverso:question_marks", bound="at most", limit=0), "Why?", False, ["no question marks"]),
]


@pytest.mark.parametrize(("constraint", "response", "expected", "words"), CASES,
                         ids=[f"{c.id}-{i}" for i, (c, *_rest) in enumerate(CASES)])
def test_rule_text_and_checker_agree(constraint, response, expected, words) -> None:
    assert _passes(constraint, response) is expected
    for text in _all_texts(constraint):
        assert any(word.lower() in text.lower() for word in words), text


def test_reversed_lowercase_rule_is_never_sampled() -> None:
    """'Use at least one capital letter' is not IFEval lowercase's complement (langdetect decides part of it)."""
    lowercase = _c("change_case:english_lowercase")
    misread = "hallo welt wie geht es dir heute"  # all lowercase; langdetect says German
    assert not _passes(engine.reverse(_c("reverso:no_capitals")), misread)
    assert _passes(engine.reverse(lowercase), misread)  # IFEval's complement passes it ...
    assert not engine.is_reversible(lowercase)  # ... so the engine never samples the type
    for cid in ("change_case:english_lowercase", "change_case:english_capital"):
        assert not REGISTRY[cid].sampled and not REGISTRY[cid].reversible
    for seed in range(30):
        picked = engine.sample_set(random.Random(seed), 11)
        assert all(engine.is_reversible(c) for c in picked)


@pytest.mark.parametrize("cid", sorted(c for c, t in REGISTRY.items() if t.sampled and t.verifiable))
def test_every_sampled_type_and_its_reverse_read_as_rules(cid: str) -> None:
    constraint = engine.make(cid, REGISTRY[cid].sample(random.Random(3), engine.CheckContext()))
    for form in (constraint, engine.reverse(constraint)):
        for text in _all_texts(form):
            assert text and text[0].isupper() and "{" not in text and "None" not in text, text
