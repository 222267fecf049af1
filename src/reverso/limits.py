"""Documented size limits on user-supplied rows (see docs/operations.md, "Input limits").

A row over a limit is quarantined with the field and the limit, before any model sees it: a single
5 MB turn or 10,000 copies of one constraint must not turn into a 46 GB allocation in collect.
"""

from __future__ import annotations

from reverso.contracts import ConstraintSpec, Message, Pair, Session

MAX_ID_CHARS = 200  # session_id, constraint id
MAX_TEXT_CHARS = 32_000  # system prompt, one user turn, one message content
MAX_TURNS = 16  # turns per session
MAX_ACTIVE_CONSTRAINTS = 32  # constraints active in one turn (system + cumulative + this turn's)
MAX_KWARGS_CHARS = 4_000  # one constraint's kwargs, as JSON
MAX_PROMPT_MESSAGES = 64  # messages in a pair's prompt

LIMITS = {
    "id": MAX_ID_CHARS, "text": MAX_TEXT_CHARS, "turns": MAX_TURNS,
    "active_constraints": MAX_ACTIVE_CONSTRAINTS, "kwargs": MAX_KWARGS_CHARS, "prompt_messages": MAX_PROMPT_MESSAGES,
}


def _spec_problem(spec: ConstraintSpec, where: str) -> str | None:
    if len(spec.id) > MAX_ID_CHARS:
        return f"{where}.id: {len(spec.id)} characters; the limit is {MAX_ID_CHARS}"
    size = len(spec.model_dump_json())
    if size > MAX_KWARGS_CHARS + len(spec.id) + 32:
        return f"{where}.kwargs: {size} characters of JSON; the limit is {MAX_KWARGS_CHARS}"
    return None


def _text_problem(text: str, where: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        return f"{where}: {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}"
    return None


def session_problem(session: Session) -> str | None:
    """The first size limit ``session`` breaks, as ``field: reason``; None when within limits."""
    checks = [
        f"session_id: {len(session.session_id)} characters; the limit is {MAX_ID_CHARS}"
        if len(session.session_id) > MAX_ID_CHARS else None,
        _text_problem(session.system, "system"),
        f"turns: {len(session.turns)} turns; the limit is {MAX_TURNS}" if len(session.turns) > MAX_TURNS else None,
    ]
    carried = len(session.system_constraints)  # system + earlier cumulative turns' constraints
    for index, spec in enumerate(session.system_constraints[: MAX_ACTIVE_CONSTRAINTS + 1]):
        checks.append(_spec_problem(spec, f"system_constraints.{index}"))
    for index, turn in enumerate(session.turns[: MAX_TURNS + 1]):
        checks.append(_text_problem(turn.user, f"turns.{index}.user"))
        active = carried + len(turn.constraints)
        carried += len(turn.constraints) if turn.cumulative else 0
        if active > MAX_ACTIVE_CONSTRAINTS:
            checks.append(f"turns.{index}.constraints: {active} active constraints; the limit is "
                          f"{MAX_ACTIVE_CONSTRAINTS}")
        for number, spec in enumerate(turn.constraints[: MAX_ACTIVE_CONSTRAINTS + 1]):
            checks.append(_spec_problem(spec, f"turns.{index}.constraints.{number}"))
    return next((c for c in checks if c), None)


def _messages_problem(messages: list[Message], where: str) -> str | None:
    for index, message in enumerate(messages):
        found = _text_problem(message.content, f"{where}.{index}.content")
        if found:
            return found
    return None


def pair_problem(pair: Pair) -> str | None:
    """The first size limit ``pair`` breaks, as ``field: reason``; None when within limits."""
    if len(pair.prompt) > MAX_PROMPT_MESSAGES:
        return f"prompt: {len(pair.prompt)} messages; the limit is {MAX_PROMPT_MESSAGES}"
    if len(pair.constraints) > MAX_ACTIVE_CONSTRAINTS:
        return f"constraints: {len(pair.constraints)}; the limit is {MAX_ACTIVE_CONSTRAINTS}"
    checks = [_messages_problem(pair.prompt, "prompt"), _messages_problem(pair.chosen, "chosen"),
              _messages_problem(pair.rejected, "rejected")]
    checks += [_spec_problem(spec, f"constraints.{i}") for i, spec in enumerate(pair.constraints)]
    return next((c for c in checks if c), None)
