"""Suite metrics, following each benchmark's own definitions.

- IFEval: prompt-level accuracy (every constraint of a prompt passed) and instruction-level accuracy
  (share of constraints passed), strict and loose.
- Multi-IF: per turn the four IFEval accuracies and their mean; ``average`` = mean over turns.
- SysBench: CSR (satisfied constraints / all), ISR (fully satisfied turns / all turns), SSR (mean
  over sessions of the run of fully satisfied turns from turn 1, divided by the number of turns).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import mean
from typing import Any

from reverso import constraints as engine
from reverso.contracts import Session
from reverso.prompts import session_constraints

FOUR = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
HEADLINE = {"ifeval": "ifeval.prompt_strict", "multi_if": "multi_if.average", "sysbench": "sysbench.isr"}


@dataclass(frozen=True)
class TurnScore:
    constraint_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]


def score_turn(session: Session, turn: int, text: str) -> TurnScore:
    active = [c for c in session_constraints(session, turn) if engine.is_verifiable(c)]
    if not text.strip():  # IFEval: an empty response follows no instruction
        return TurnScore(tuple(c.id for c in active), (False,) * len(active), (False,) * len(active))
    context = engine.CheckContext(prompt=session.turns[turn].user)
    strict = tuple(v.passed for v in engine.check_all(active, text, context))
    loose = tuple(engine.check_all_loose(active, text, context))
    return TurnScore(tuple(c.id for c in active), strict, loose)


def score_sessions(sessions: list[Session], texts: list[list[str]]) -> list[list[TurnScore]]:
    return [[score_turn(s, t, text) for t, text in enumerate(turn_texts)] for s, turn_texts in zip(sessions, texts, strict=True)]


def four_accuracies(turns: list[TurnScore]) -> dict[str, float]:
    turns = [t for t in turns if t.constraint_ids]
    if not turns:
        return {name: 0.0 for name in FOUR}
    total = sum(len(t.strict) for t in turns)
    return {
        "prompt_strict": mean(all(t.strict) for t in turns),
        "prompt_loose": mean(all(t.loose) for t in turns),
        "instruction_strict": sum(sum(t.strict) for t in turns) / total,
        "instruction_loose": sum(sum(t.loose) for t in turns) / total,
    }


def ifeval_metrics(scores: list[list[TurnScore]]) -> dict[str, float]:
    return four_accuracies([s[0] for s in scores])


def multi_if_metrics(scores: list[list[TurnScore]]) -> dict[str, Any]:
    turns = max(len(s) for s in scores)
    result: dict[str, Any] = {}
    for turn in range(turns):
        acc = four_accuracies([s[turn] for s in scores if len(s) > turn])
        acc["mean"] = mean(acc.values())
        result[f"turn_{turn + 1}"] = acc
    result["average"] = mean(result[f"turn_{t + 1}"]["mean"] for t in range(turns))
    return result


def sysbench_metrics(scores: list[list[TurnScore]]) -> dict[str, float]:
    all_turns = [t for s in scores for t in s if t.constraint_ids]
    satisfied = sum(sum(t.strict) for t in all_turns)
    total = sum(len(t.strict) for t in all_turns)
    stable = []
    for session in scores:
        run = 0
        for turn in session:
            if not all(turn.strict):
                break
            run += 1
        stable.append(run / max(len(session), 1))
    return {"csr": satisfied / max(total, 1), "isr": mean(all(t.strict) for t in all_turns) if all_turns else 0.0,
            "ssr": mean(stable) if stable else 0.0}


SUITE_METRICS = {"ifeval": ifeval_metrics, "multi_if": multi_if_metrics, "sysbench": sysbench_metrics}


def per_constraint(all_scores: list[list[list[TurnScore]]]) -> dict[str, float]:
    """Strict pass rate per constraint type, over every turn of every suite."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for scores in all_scores:
        for session in scores:
            for turn in session:
                for cid, ok in zip(turn.constraint_ids, turn.strict, strict=True):
                    counts[cid][0] += ok
                    counts[cid][1] += 1
    return {cid: round(ok / n, 4) for cid, (ok, n) in sorted(counts.items())}


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"multi_if": {"average": 0.3}}`` -> ``{"multi_if.average": 0.3}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
