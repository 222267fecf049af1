"""Held-out evaluation suites built by the constraint engine from the corpus' eval portion.

- ``ifeval``: single-turn prompts with 1..k verifiable constraints.
- ``multi_if``: 3 turns; every turn adds a constraint and earlier ones stay active. As in Multi-IF,
  each new instruction is stated once, in the user message of the turn that introduces it (the
  system message is the persona alone), and later turns are scored on it too: carrying
  instructions across turns is what the suite measures.
- ``sysbench``: a system prompt with constraints, 5 user turns answered on the model's own history.
- ``ood``: IFEval-style prompts whose rules are drawn only from ``evaluate.held_out_types``, types
  that collect never samples for training (``collect.held_out_types``): out-of-distribution gains,
  reported beside the in-distribution suites, which never use those types.

Suites use ``evaluate.seed`` (disjoint from ``collect.seed``) and one pool of the seed corpus: the
test pool (split ``eval``, what evaluate and the study report) or the validation pool (split
``validation``, the only one to tune on). Training sessions draw from split ``train``; the three pools
share no persona, query text, role or topic (tests/test_evaluate.py checks exact and normalised text).
"""

from __future__ import annotations

from pathlib import Path

from reverso import constraints as engine
from reverso.collect.sessions import Pool, SeedCorpus, build_sessions, load_seed
from reverso.config import EvaluateParams
from reverso.contracts import Session

SUITES = ("ifeval", "multi_if", "sysbench", "ood")
CARRY_OVER = "From now on, in this and every later reply: "


def ifeval_suite(corpus: SeedCorpus, params: EvaluateParams, ood: bool = False, pool: Pool = "eval") -> list[Session]:
    """Single-turn prompts with 1..k rules; ``ood``: only held-out types (k at most their number)."""
    low, high = params.ifeval_constraints
    total, name, offset = (params.suites.ood, "ood", 303) if ood else (params.suites.ifeval, "ifeval", 0)
    if ood:
        low, high = min(low, len(params.held_out_types)), min(high, len(params.held_out_types))
    rules = {"types": params.held_out_types} if ood else {"exclude": params.held_out_types}
    sizes = list(range(low, high + 1))
    suite: list[Session] = []
    for position, size in enumerate(sizes):
        count = total // len(sizes) + (1 if position < total % len(sizes) else 0)
        if count:
            suite += build_sessions(corpus, pool, count, params.seed + offset + size, turns=1,
                                    system_constraints=size, turn_constraints=0, cumulative=False,
                                    prefix=f"{name}-k{size}-", **rules)
    return suite


def state_once(session: Session) -> Session:
    """Each turn's new rules go into that turn's user message, once; no rule list is rendered."""
    turns = []
    for index, turn in enumerate(session.turns):
        rules = " ".join(engine.describe(engine.parse(spec.model_dump()),
                                         engine.stable_rng(session.session_id, index, spec.id))
                         for spec in turn.constraints)
        turns.append(turn.model_copy(update={"user": f"{turn.user}\n\n{CARRY_OVER}{rules}" if rules else turn.user}))
    return session.model_copy(update={"turns": turns, "render_rules": False})


def multi_if_suite(corpus: SeedCorpus, params: EvaluateParams, pool: Pool = "eval") -> list[Session]:
    if not params.suites.multi_if:
        return []
    built = build_sessions(corpus, pool, params.suites.multi_if, params.seed + 101, turns=params.multi_if_turns,
                           system_constraints=0, turn_constraints=1, cumulative=True, prefix="multi_if-",
                           exclude=params.held_out_types)
    return [state_once(session) for session in built]


def sysbench_suite(corpus: SeedCorpus, params: EvaluateParams, pool: Pool = "eval") -> list[Session]:
    if not params.suites.sysbench:
        return []
    return build_sessions(corpus, pool, params.suites.sysbench, params.seed + 202, turns=params.sysbench_turns,
                          system_constraints=params.sysbench_constraints, turn_constraints=0, cumulative=False,
                          prefix="sysbench-", exclude=params.held_out_types)


def build_suites(params: EvaluateParams, seed_dir: str | Path, pool: Pool = "eval") -> dict[str, list[Session]]:
    """Every suite from one pool of the corpus: ``eval`` (the test pool) or ``validation`` (tuning only)."""
    corpus = load_seed(seed_dir)
    built = {"ifeval": ifeval_suite(corpus, params, pool=pool), "multi_if": multi_if_suite(corpus, params, pool),
             "sysbench": sysbench_suite(corpus, params, pool), "ood": ifeval_suite(corpus, params, True, pool)}
    return {name: sessions for name, sessions in built.items() if sessions}
