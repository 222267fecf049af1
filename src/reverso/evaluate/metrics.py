"""Suite metrics, following each benchmark's own definitions; never a number from unjudged criteria.

- IFEval: prompt-level accuracy (every constraint of a prompt passed) and instruction-level accuracy
  (passed constraints / all constraints, pooled), strict and loose; an empty reply follows nothing.
- Multi-IF: per turn the four IFEval accuracies and their mean; ``average`` = mean over turns.
- SysBench (Qin et al. 2024, and its released ``utils.py`` / ``plot/tab4_turn.py``):
  CSR = mean over instructions (user turns) of the share of that turn's constraints satisfied
  (macro-averaged); ISR = share of instructions whose constraints are all satisfied; SSR = mean over
  sessions of the number of consecutive fully satisfied turns from turn 1, divided by the number of
  turns. ``session_all_pass`` = share of sessions whose every turn passes (SysBench's last-round column).

Soft constraints (SysBench criteria, tone, role …) are judged by the configured judge. When a turn
has a criterion without a verdict (no judge, or the judge's answer never fit its schema), the suite's
metrics are ``None`` with a ``not_scored`` reason: an unjudged criterion is neither a pass nor a fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

from reverso import constraints as engine
from reverso.contracts import Message, Session
from reverso.prompts import session_constraints

FOUR = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
HEADLINE = {"ifeval": "ifeval.prompt_strict", "multi_if": "multi_if.average", "sysbench": "sysbench.isr"}
SYSBENCH = ("csr", "isr", "ssr", "session_all_pass")
NO_JUDGE = "set evaluate.judge (backend hf or openai) to judge soft criteria"


@dataclass(frozen=True)
class TurnScore:
    constraint_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]
    unscored: tuple[int, ...] = ()  # positions in constraint_ids with no verdict (no judge / judge error)
    judge_errors: int = 0


def judge_prompt(session: Session, turn: int, history: Sequence[Message]) -> str:
    """What a soft-criteria judge reads besides the reply: system prompt, history, the current request."""
    parts = [f"SYSTEM PROMPT:\n{session.system}"] if session.system else []
    if history:
        parts.append("CONVERSATION SO FAR:\n" + "\n".join(f"{m.role}: {m.content}" for m in history))
    parts.append(f"CURRENT USER MESSAGE:\n{session.turns[turn].user}")
    return "\n\n".join(parts)


def score_turn(session: Session, turn: int, text: str, judge: Any = None,
               history: Sequence[Message] = ()) -> TurnScore:
    """Rule verdicts for verifiable constraints, judge verdicts for soft ones (or mark them unscored)."""
    active = session_constraints(session, turn)
    ids = tuple(c.id for c in active)
    if not text.strip():  # IFEval: an empty response follows no instruction
        return TurnScore(ids, (False,) * len(active), (False,) * len(active))
    strict, loose = [False] * len(active), [False] * len(active)
    rule = [i for i, c in enumerate(active) if engine.is_verifiable(c)]
    soft = [i for i, c in enumerate(active) if not engine.is_verifiable(c)]
    context = engine.CheckContext(prompt=session.turns[turn].user)
    checked = engine.check_all([active[i] for i in rule], text, context)
    loosely = engine.check_all_loose([active[i] for i in rule], text, context)
    for i, verdict, ok in zip(rule, checked, loosely, strict=True):
        strict[i], loose[i] = verdict.passed, ok
    unscored, errors = list(soft), 0
    if soft and judge is not None:
        judged = judge.judge([active[i] for i in soft], text,
                             engine.CheckContext(prompt=judge_prompt(session, turn, history)))
        unscored = []
        for i, verdict in zip(soft, judged, strict=True):
            if verdict.error:
                unscored.append(i)
                errors += 1
            else:
                strict[i] = loose[i] = verdict.passed  # a judge has no loose variant
    return TurnScore(ids, tuple(strict), tuple(loose), tuple(unscored), errors)


def score_sessions(sessions: list[Session], texts: list[list[str]], judge: Any = None) -> list[list[TurnScore]]:
    """Score every turn; the judge sees each turn's history (the model's own earlier answers)."""
    scored = []
    for session, turn_texts in zip(sessions, texts, strict=True):
        history: list[Message] = []
        turns = []
        for t, text in enumerate(turn_texts):
            turns.append(score_turn(session, t, text, judge, history))
            history += [Message(role="user", content=session.turns[t].user), Message(role="assistant", content=text)]
        scored.append(turns)
    return scored


def not_scored(turns: Sequence[TurnScore]) -> str | None:
    """Why metrics over these turns cannot be computed, or None when every constraint has a verdict."""
    missing = sum(len(t.unscored) for t in turns)
    if not turns:
        return "no scored turns"
    if not missing:
        return None
    total = sum(len(t.constraint_ids) for t in turns)
    errors = sum(t.judge_errors for t in turns)
    cause = f"{errors} judge answers never fit the schema" if errors else NO_JUDGE
    return f"{missing} of {total} criteria have no verdict: {cause}"


def _nulls(keys: Sequence[str], reason: str) -> dict[str, Any]:
    return {**{k: None for k in keys}, "not_scored": reason}


def four_accuracies(turns: list[TurnScore]) -> dict[str, Any]:
    turns = [t for t in turns if t.constraint_ids]
    reason = not_scored(turns)
    if reason:
        return _nulls(FOUR, reason)
    total = sum(len(t.strict) for t in turns)
    return {
        "prompt_strict": mean(all(t.strict) for t in turns),
        "prompt_loose": mean(all(t.loose) for t in turns),
        "instruction_strict": sum(sum(t.strict) for t in turns) / total,
        "instruction_loose": sum(sum(t.loose) for t in turns) / total,
    }


def ifeval_metrics(scores: list[list[TurnScore]]) -> dict[str, Any]:
    return four_accuracies([s[0] for s in scores if s])


def multi_if_metrics(scores: list[list[TurnScore]]) -> dict[str, Any]:
    reason = not_scored([t for s in scores for t in s if t.constraint_ids])
    if reason:
        return _nulls(("average",), reason)
    turns = max(len(s) for s in scores)
    result: dict[str, Any] = {}
    for turn in range(turns):
        acc = four_accuracies([s[turn] for s in scores if len(s) > turn])
        if "not_scored" not in acc:  # a turn no session constrains has no accuracy to average
            acc["mean"] = mean(acc[k] for k in FOUR)
            result[f"turn_{turn + 1}"] = acc
    result["average"] = mean(acc["mean"] for acc in result.values())
    return result


def stable_run(session: Sequence[TurnScore]) -> int:
    """Consecutive fully satisfied turns from turn 1 (SysBench's session stability)."""
    run = 0
    for turn in session:
        if not all(turn.strict):
            break
        run += 1
    return run


def sysbench_metrics(scores: list[list[TurnScore]]) -> dict[str, Any]:
    instructions = [t for s in scores for t in s if t.constraint_ids]
    reason = not_scored(instructions)
    if reason:
        return _nulls(SYSBENCH, reason)
    sessions = [s for s in scores if s]
    return {"csr": mean(sum(t.strict) / len(t.strict) for t in instructions),
            "isr": mean(all(t.strict) for t in instructions),
            "ssr": mean(stable_run(s) / len(s) for s in sessions),
            "session_all_pass": mean(stable_run(s) == len(s) for s in sessions)}


SUITE_METRICS = {"ifeval": ifeval_metrics, "multi_if": multi_if_metrics, "sysbench": sysbench_metrics}


def per_constraint(all_scores: list[list[list[TurnScore]]]) -> dict[str, float]:
    """Strict pass rate per constraint type, over every judged constraint of every suite."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for scores in all_scores:
        for session in scores:
            for turn in session:
                for index, (cid, ok) in enumerate(zip(turn.constraint_ids, turn.strict, strict=True)):
                    if index not in turn.unscored:
                        counts[cid][0] += ok
                        counts[cid][1] += 1
    return {cid: round(ok / n, 4) for cid, (ok, n) in sorted(counts.items())}


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"multi_if": {"average": 0.3}}`` -> ``{"multi_if.average": 0.3}`` (numbers only; None is left out)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
