"""Implicit rules: rules every instruction carries without saying them, checked like any other.

``reverso:reply_ends`` is the rule "the reply ends": a reply cut off at the token cap fails it. It is
never rendered into a prompt (every instruction already implies it), never sampled and never reversed
(no instruction asks for a reply that runs on until it is cut), so under RPO a cut reply can only be
the rejected side of a pair, and the rule counts in g like any rule the two replies differ on.
"""

from __future__ import annotations

import random
from typing import Any

from reverso.constraints.base import CheckContext, ConstraintType, ResponseView, Verdict, register

REPLY_ENDS = "reverso:reply_ends"


@register
class ReplyEnds(ConstraintType):
    id = REPLY_ENDS
    sampled = False
    reversible = False
    implicit = True

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        if context.finished:
            return Verdict(True, "the reply ends")
        return Verdict(False, "the reply was cut off at the token cap")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return "Finish the reply (implicit in every instruction: a reply cut off at the length limit fails it)."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not finish the reply: run on until the length limit cuts it off."
