"""IFBench's instruction ids as evaluation-only constraint types: the shared type and kwargs.

Each id is one ``Rule`` (id, English text, check, kwargs model, sampler) registered as an
``IFBenchType``: never sampled, never reversed (``evaluation_only``), so collect and reverse never
meet them. A check returns ``(passed, reason)`` or a ``Verdict``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from reverso.constraints.base import REGISTRY, CheckContext, ConstraintType, Kwargs, ResponseView, Verdict

Check = Callable[[Any, ResponseView], "tuple[bool, str] | Verdict"]


@dataclass(frozen=True)
class Rule:
    id: str
    text: str  # the instruction in English; ``{field}`` takes a kwarg
    check: Check
    kwargs: type[Kwargs] = Kwargs
    sample: Callable[[random.Random], dict[str, Any]] = lambda rng: {}


class IFBenchType(ConstraintType):
    """One IFBench instruction id: evaluation only (not sampled, not reversed)."""

    sampled, reversible, evaluation_only = False, False, True

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.id = rule.id  # type: ignore[misc]
        self.Kwargs = rule.kwargs  # type: ignore[misc]
        self.group = rule.id  # type: ignore[misc]

    def check(self, kwargs: Any, view: ResponseView, context: CheckContext) -> Verdict:
        result = self.rule.check(kwargs, view)
        return result if isinstance(result, Verdict) else Verdict(*result)

    def describe(self, kwargs: Any, rng: random.Random) -> str:
        return self.rule.text.format(**kwargs.model_dump())

    def describe_negated(self, kwargs: Any, rng: random.Random) -> str:
        return f"Do not follow this rule: {self.describe(kwargs, rng)}"

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return self.rule.sample(rng)


def register_rules(rules: list[Rule]) -> None:
    for rule in rules:
        if rule.id in REGISTRY:
            raise RuntimeError(f"constraint type {rule.id!r} registered twice")
        REGISTRY[rule.id] = IFBenchType(rule)


def sentences(view: ResponseView) -> list[str]:
    """IFBench's sentences of a response (IFEval's regex splitter), shared by several checks."""
    return view.regex_sentences


def at_least(count: int, needed: int, what: str) -> tuple[bool, str]:
    return count >= needed, f"{count} {what}; needs at least {needed}"


class NKwargs(Kwargs):
    N: int = Field(ge=0)


class SmallNKwargs(Kwargs):
    small_n: int = Field(ge=0)


class PercentageKwargs(Kwargs):
    percentage: float = Field(ge=0)


class WordRangeKwargs(Kwargs):
    min_words: int = Field(ge=0)
    max_words: int = Field(ge=0)


class OverlapKwargs(Kwargs):
    reference_text: str
    percentage: float = Field(ge=0)


class JapaneseKwargs(Kwargs):
    N: int = Field(ge=1)


class KeywordSentenceKwargs(Kwargs):
    word: str = Field(min_length=1)
    N: int = Field(ge=1)


class KeywordsMultipleKwargs(Kwargs):
    keyword1: str = Field(min_length=1)
    keyword2: str = Field(min_length=1)
    keyword3: str = Field(min_length=1)
    keyword4: str = Field(min_length=1)
    keyword5: str = Field(min_length=1)


class SpecificPositionKwargs(Kwargs):
    keyword: str = Field(min_length=1)
    n: int = Field(ge=1)
    m: int = Field(ge=1)


class KeywordKwargs(Kwargs):
    keyword: str = Field(min_length=1)


class OptionsKwargs(Kwargs):
    options: str = Field(min_length=1)


class SepKwargs(Kwargs):
    sep: str = Field(min_length=1)


class RepeatKwargs(Kwargs):
    prompt_to_repeat: str = Field(min_length=1)


class RepeatSpanKwargs(Kwargs):
    prompt_to_repeat: str = Field(min_length=1)
    n_start: int = Field(ge=0)
    n_end: int = Field(ge=0)
