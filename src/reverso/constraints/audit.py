"""``reverso constraints audit``: are the sets collect samples satisfiable, reversed or not?

Builds sessions exactly as collect does (same function, same params, same seed corpus) and, for
every session's active constraint set (its last turn's when constraints accumulate, else each
turn's), checks the original set, the fully reversed set and ``reversals`` random mixes:
``find_conflicts`` must find nothing and ``build_witness`` must find a response passing them all.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from reverso import constraints as engine


def _forms(active: list[engine.Constraint], rng: random.Random, reversals: int) -> list[list[engine.Constraint]]:
    forms = [active, [engine.reverse(c) for c in active]]
    for _ in range(reversals):
        forms.append([engine.reverse(c) if rng.random() < 0.5 else c for c in active])
    return forms


def audit(collect_params: Any, seed_dir: str | Path, sets: int, reversals: int = 1, examples: int = 3) -> dict[str, Any]:
    """Counts of contradictory sets and sets without a witness among ``sets`` sampled sessions."""
    from reverso.collect.sessions import build_sessions, load_seed
    from reverso.prompts import session_constraints

    corpus = load_seed(seed_dir)
    sessions = build_sessions(
        corpus, "train", sets, collect_params.seed, turns=collect_params.turns,
        system_constraints=collect_params.system_constraints, turn_constraints=collect_params.turn_constraints,
        cumulative=collect_params.cumulative, eval_fraction=collect_params.eval_fraction,
        soft_constraints=collect_params.soft_constraints)
    rng = random.Random(collect_params.seed)
    report: dict[str, Any] = {"sets": len(sessions), "contradictory": 0, "witness_failures": 0, "forms_checked": 0,
                              "constraints_per_set": 0, "examples": []}
    for session in sessions:
        turns = [len(session.turns) - 1] if all(t.cumulative for t in session.turns) else range(len(session.turns))
        contradictory = unwitnessed = False
        for turn in turns:
            active = [c for c in session_constraints(session, turn) if engine.is_verifiable(c)]
            report["constraints_per_set"] = max(report["constraints_per_set"], len(active))
            context = engine.CheckContext(prompt=session.turns[turn].user)
            for form in _forms(active, rng, reversals):
                report["forms_checked"] += 1
                reasons = engine.find_conflicts(form)
                witness = engine.build_witness(form, context)
                contradictory |= bool(reasons)
                unwitnessed |= witness is None
                if (reasons or witness is None) and len(report["examples"]) < examples:
                    report["examples"].append({"session_id": session.session_id, "turn": turn,
                                               "constraints": [c.spec() for c in form], "conflicts": reasons,
                                               "witness": witness is not None})
        report["contradictory"] += contradictory
        report["witness_failures"] += unwitnessed
    return report
