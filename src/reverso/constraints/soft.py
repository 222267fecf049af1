"""Soft constraints (tone, audience, style, role, behaviour): free text, judged by a model.

The kwargs carry the instruction text and its polarity, so reversal is an exact, involutive flip
of ``negated``. The English of the negated form is ``opposite`` when a judge model wrote it
(``reverse.soft_reversal: judge``), else a modal flip rule ("must" <-> "must not", "always" <->
"never", "X" <-> "Do not x"). Soft constraints are never checked by rule: see ``judge.py``.
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import Field

from reverso.constraints.base import CheckContext, ConstraintError, ConstraintType, Kwargs, ResponseView, Verdict, register

SOFT_KINDS = ("tone", "audience", "style", "role", "behaviour", "criteria")
_MODALS = ((r"\bmust not\b", "must"), (r"\bmust\b", "must not"), (r"\bshould not\b", "should"),
           (r"\bshould\b", "should not"), (r"^Never\b", "Always"), (r"^Always\b", "Never"))


def flip_modal(text: str) -> str:
    """The opposite instruction by rule: first matching modal pattern, else a 'Do not' prefix."""
    stripped = text.strip()
    if stripped.startswith("Do not "):
        rest = stripped[len("Do not "):]
        return rest[:1].upper() + rest[1:]
    for pattern, replacement in _MODALS:
        if re.search(pattern, stripped):
            return re.sub(pattern, replacement, stripped, count=1)
    return "Do not " + stripped[:1].lower() + stripped[1:]


SAMPLE_TEXTS = {
    "tone": ["Use a formal tone.", "Keep a warm, friendly tone.", "Sound calm and reassuring."],
    "audience": ["Write for a ten-year-old reader.", "Assume the reader is an expert.", "Write for a busy manager."],
    "style": ["Be concise and direct.", "Use vivid, concrete examples.", "Avoid jargon."],
    "role": ["Stay in the role of the persona.", "Speak as the persona, in the first person."],
    "behaviour": ["Ask a clarifying question when the request is ambiguous.", "Never give medical diagnoses."],
    "criteria": ["Answers the user's question directly."],
}


class SoftKwargs(Kwargs):
    text: str = Field(min_length=1)
    negated: bool = False  # True: the instruction is the opposite of ``text``
    opposite: str | None = Field(None, min_length=1, max_length=500)  # the opposite, as a judge model wrote it


class SoftConstraint(ConstraintType):
    verifiable = False
    sampled = False
    Kwargs = SoftKwargs

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        raise ConstraintError(f"{self.id!r} is a soft constraint: it needs a judge, not a rule")

    def describe(self, kw: Any, rng: random.Random) -> str:
        if not kw.negated:
            return kw.text
        return kw.opposite or flip_modal(kw.text)

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"text": kw.text, "negated": not kw.negated, "opposite": kw.opposite}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"text": rng.choice(SAMPLE_TEXTS.get(self.id.split(":", 1)[1], SAMPLE_TEXTS["criteria"]))}


for _kind in SOFT_KINDS:
    register(type(f"Soft_{_kind}", (SoftConstraint,), {"id": f"soft:{_kind}", "group": f"soft:{_kind}"}))
