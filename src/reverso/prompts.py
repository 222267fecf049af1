"""Chat messages for a session turn: persona + rendered rules in the system message.

All of a turn's *active* constraints are rendered into the system message (the user message
stays the raw request). The same rendering serves sampling, pair prompts (with some constraints
reversed) and evaluation, so a response that passes every original constraint sees the exact
prompt it was sampled with. Phrasings are chosen by a stable per-session seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from reverso import constraints as engine
from reverso.contracts import Message, Session

RULES_HEADER = "Follow these rules in every reply:"


def session_constraints(session: Session, turn: int) -> list[engine.Constraint]:
    """The active constraints of ``turn``: system ones, cumulative earlier turns', and this turn's."""
    active = [engine.parse(spec.model_dump()) for spec in session.system_constraints]
    for index, item in enumerate(session.turns[: turn + 1]):
        if index == turn or item.cumulative:
            active.extend(engine.parse(spec.model_dump()) for spec in item.constraints)
    return active


def system_message(persona: str, constraints: Sequence[engine.Constraint], phrasing_seed: object) -> str:
    """The persona and the numbered rules; implicit rules (``reverso:reply_ends``) go unsaid."""
    if not [c for c in constraints if not engine.is_implicit(c)]:
        return persona
    rules = engine.render_instructions(constraints, phrasing_seed)
    return f"{persona}\n\n{RULES_HEADER}\n{rules}"


def turn_messages(
    session: Session,
    turn: int,
    history: Sequence[Message],
    constraints: Sequence[engine.Constraint] | None = None,
) -> list[Message]:
    """System + history + user for ``turn``; ``constraints`` replaces the active set (for reversal)."""
    active = session_constraints(session, turn) if constraints is None else list(constraints)
    user = Message(role="user", content=session.turns[turn].user)
    if not session.render_rules:
        system = [Message(role="system", content=session.system)] if session.system else []
        return [*system, *history, user]
    system_text = system_message(session.system, active, session.session_id)
    return [Message(role="system", content=system_text), *history, user]


def as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [m.model_dump() for m in messages]
