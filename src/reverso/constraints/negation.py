"""The generic complement: ``not:<id>`` passes exactly when ``<id>`` fails.

Used as the reverse of every type that has no same-family complement (for example "exactly 3
bullet points" reverses to "any number of bullet points except 3"). ``reverse(not:X) == X``.
"""

from __future__ import annotations

import random
from typing import Any

from reverso.constraints.base import CheckContext, ConstraintType, ResponseView, Verdict


class Negation(ConstraintType):
    sampled = False

    def __init__(self, inner: ConstraintType) -> None:
        if isinstance(inner, Negation):
            raise ValueError("not:not:... is not a constraint id; reverse a 'not:' id instead")
        self.inner = inner
        self.id = f"not:{inner.id}"  # type: ignore[misc]
        self.Kwargs = inner.Kwargs  # type: ignore[misc]
        self.verifiable = inner.verifiable  # type: ignore[misc]
        self.group = inner.group or inner.id  # type: ignore[misc]

    def check(self, kwargs: Any, view: ResponseView, context: CheckContext) -> Verdict:
        verdict = self.inner.check(kwargs, view, context)
        return Verdict(not verdict.passed, f"negated: {verdict.reason}")

    def describe(self, kwargs: Any, rng: random.Random) -> str:
        return self.inner.describe_negated(kwargs, rng)

    def reverse(self, kwargs: Any) -> tuple[str, dict[str, Any]]:
        return self.inner.id, kwargs.model_dump(mode="json")
