"""Core types of the constraint engine: constraints, verdicts, the shared response view, the registry.

A *constraint type* knows four things about its constraints: how to check a response, how to say
the constraint in English, how to reverse it (its exact complement) and how to sample one.
A ``Constraint`` is just an id plus validated kwargs; it is what the rest of reverso handles.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from reverso.errors import ReversoError


class ConstraintError(ReversoError, ValueError):
    """Unknown constraint id or invalid kwargs; the message names the id, field and allowed values."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    error: bool = False  # the judge could not decide (never counted as a pass)


@dataclass(frozen=True)
class CheckContext:
    """What a checker may need beyond the response: the turn's user prompt, the user's name."""

    prompt: str = ""
    user_name: str | None = None
    finished: bool = True  # False: the reply was cut off at the token cap (a response's finish_reason "length")


_WORD_RE = re.compile(r"\w+")


class ResponseView:
    """Per-response work computed once and shared by every check of that response."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def stripped(self) -> str:
        return self.text.strip()

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def words(self) -> list[str]:
        return _WORD_RE.findall(self.text)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def sentences(self) -> list[str]:
        from reverso.constraints.text import sentences

        return sentences(self.text)

    @cached_property
    def regex_sentences(self) -> list[str]:
        """IFEval's regex sentence splitter (IFBench's sentences), not Punkt."""
        from reverso.constraints.ifbench.text import split_into_sentences

        return split_into_sentences(self.text)

    @cached_property
    def nltk_words(self) -> list[str]:
        from reverso.constraints.text import nltk_words

        return nltk_words(self.text)

    @cached_property
    def language(self) -> str | None:
        from reverso.constraints.text import detect_language

        return detect_language(self.text)

    @cached_property
    def json_parsed(self) -> tuple[bool, Any, str]:
        """(parsed?, value, why not) after removing an optional ```json fence, as IFEval does.

        JSON nested deeper than Python's recursion limit is valid JSON that ``json`` cannot read:
        it fails with that reason (lm-eval's checker raises RecursionError there).
        """
        body = self.stripped
        for prefix in ("```json", "```Json", "```JSON", "```"):
            body = body.removeprefix(prefix)
        body = body.removesuffix("```").strip()
        try:
            return True, json.loads(body), ""
        except RecursionError:
            return False, None, "JSON nested too deeply to parse"
        except ValueError:
            return False, None, "not valid JSON"


class Kwargs(BaseModel):
    """Base of every constraint type's kwargs model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Constraint:
    """A constraint instance: an id and its (validated) kwargs. Hashable and comparable."""

    id: str
    kwargs_json: str  # canonical JSON of the kwargs, so instances hash and compare by value

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.kwargs_json)

    def spec(self) -> dict[str, Any]:
        """The data-contract form: ``{"id": ..., "kwargs": {...}}``."""
        return {"id": self.id, "kwargs": self.kwargs}

    def __repr__(self) -> str:
        return f"Constraint({self.id}, {self.kwargs_json})"


class ConstraintType:
    """One kind of constraint. Subclasses set the class attributes and implement the hooks."""

    id: ClassVar[str]
    Kwargs: ClassVar[type[Kwargs]] = Kwargs
    # Verifiable types are checked by rule; soft ones go to a Judge.
    verifiable: ClassVar[bool] = True
    # Constraints in the same exclusive group never appear together in one sampled set.
    group: ClassVar[str | None] = None
    # Groups this type cannot be combined with (e.g. JSON output vs. a title line).
    conflicts: ClassVar[frozenset[str]] = frozenset()
    # Whether ``sample`` may pick it for generated sessions (reverse-only types opt out).
    sampled: ClassVar[bool] = True
    # False when the exact complement has no faithful short English statement (docs/constraints.md):
    # such types are never sampled, so the reverse stage never has to state their complement.
    reversible: ClassVar[bool] = True
    # Scored in evaluation only (IFBench's out-of-distribution types): never sampled nor reversed.
    evaluation_only: ClassVar[bool] = False
    # Implicit rules hold for every instruction without being stated (types_implicit.py): never rendered.
    implicit: ClassVar[bool] = False

    def check(self, kwargs: Any, view: ResponseView, context: CheckContext) -> Verdict:
        raise NotImplementedError

    def describe(self, kwargs: Any, rng: random.Random) -> str:
        raise NotImplementedError

    def reverse(self, kwargs: Any) -> tuple[str, dict[str, Any]]:
        """The exact complement as (id, kwargs). Default: the generic ``not:`` wrapper."""
        return f"not:{self.id}", kwargs.model_dump(mode="json")

    def describe_negated(self, kwargs: Any, rng: random.Random) -> str:
        """English for the complement, used by the ``not:`` wrapper."""
        raise NotImplementedError(f"{self.id} has no negated phrasing")

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {}

    @property
    def all_groups(self) -> frozenset[str]:
        return frozenset({self.group or self.id})


REGISTRY: dict[str, ConstraintType] = {}


def register(cls: type[ConstraintType]) -> type[ConstraintType]:
    if cls.id in REGISTRY:
        raise RuntimeError(f"constraint type {cls.id!r} registered twice")
    REGISTRY[cls.id] = cls()
    return cls


def get_type(constraint_id: str) -> ConstraintType:
    if constraint_id.startswith("not:"):
        inner = get_type(constraint_id[4:])
        from reverso.constraints.negation import Negation  # local: avoids an import cycle

        return Negation(inner)
    try:
        return REGISTRY[constraint_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConstraintError(f"unknown constraint id {constraint_id!r}; known ids: {known}") from None


def validate_kwargs(ctype: ConstraintType, kwargs: dict[str, Any]) -> Kwargs:
    try:
        return ctype.Kwargs.model_validate(kwargs)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            field = ".".join(str(p) for p in item["loc"]) or "<kwargs>"
            problems.append(f"kwargs.{field}: {item['msg']}")
        allowed = ", ".join(ctype.Kwargs.model_fields) or "(none)"
        raise ConstraintError(
            f"constraint {ctype.id!r}: {'; '.join(problems)} (allowed fields: {allowed})"
        ) from None


def make(constraint_id: str, kwargs: dict[str, Any] | None = None) -> Constraint:
    """Build a validated constraint; raises ConstraintError naming the id and the field."""
    ctype = get_type(constraint_id)
    model = validate_kwargs(ctype, dict(kwargs or {}))
    canonical = json.dumps(model.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return Constraint(constraint_id, canonical)
