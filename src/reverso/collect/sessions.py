"""Seed corpus loading and the multi-constraint session builder (seeded, reproducible)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reverso import constraints as engine
from reverso.contracts import ConstraintSpec, Session, Turn
from reverso.io import DataError, Quarantined, read_rows


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    domain: str
    system: str = Field(min_length=1)
    split: Literal["train", "eval"]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    task: str
    text: str = Field(min_length=1)
    split: Literal["train", "eval"]


class SeedCorpus(BaseModel):
    personas: list[Persona]
    queries: list[Query]
    quarantined: list[Quarantined] = Field(default_factory=list)

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def portion(self, split: str) -> tuple[list[Persona], list[Query]]:
        personas = [p for p in self.personas if p.split == split]
        queries = [q for q in self.queries if q.split == split]
        if not personas or not queries:
            raise DataError(f"seed corpus has no {split!r} personas or queries")
        return personas, queries


def load_seed(seed_dir: str | Path) -> SeedCorpus:
    seed_dir = Path(seed_dir)
    personas = read_rows(seed_dir / "personas.jsonl", Persona)
    queries = read_rows(seed_dir / "queries.jsonl", Query)
    return SeedCorpus(
        personas=personas.rows,
        queries=queries.rows,
        quarantined=[*personas.quarantined, *queries.quarantined],
    )


def _specs(constraints: list[engine.Constraint]) -> list[ConstraintSpec]:
    return [ConstraintSpec(**c.spec()) for c in constraints]


def build_session(
    session_id: str,
    persona: Persona,
    queries: list[Query],
    rng: random.Random,
    *,
    system_constraints: int,
    turn_constraints: int,
    cumulative: bool,
    split: Literal["train", "eval"],
    seed: int,
    soft_constraints: int = 0,
) -> Session:
    """One session: persona + k system constraints, one query per turn, optional per-turn additions.

    The whole session's constraints are sampled as one compatible set, then dealt out (system
    first, then each turn), so later turns never run out of constraints that fit.
    """
    total = system_constraints + turn_constraints * len(queries)
    drawn = engine.sample_set(rng, total) if total else []
    system = drawn[:system_constraints] + (engine.sample_soft(rng, soft_constraints) if soft_constraints else [])
    turns = []
    for index, query in enumerate(queries):
        start = system_constraints + index * turn_constraints
        added = drawn[start : start + turn_constraints]
        turns.append(Turn(user=query.text, constraints=_specs(added), cumulative=cumulative))
    return Session(
        session_id=session_id,
        system=persona.system,
        system_constraints=_specs(system),
        turns=turns,
        split=split,
        seed=seed,
    )


def build_sessions(
    corpus: SeedCorpus,
    portion: Literal["train", "eval"],
    count: int,
    seed: int,
    *,
    turns: int,
    system_constraints: int,
    turn_constraints: int,
    cumulative: bool,
    eval_fraction: float = 0.0,
    prefix: str = "s",
    soft_constraints: int = 0,
) -> list[Session]:
    """``count`` sessions from one portion of the corpus; ``eval_fraction`` of them get split=eval."""
    personas, queries = corpus.portion(portion)
    rng = random.Random(seed)
    n_eval = round(count * eval_fraction) if portion == "train" else count
    sessions = []
    for index in range(count):
        split: Literal["train", "eval"] = "eval" if index < n_eval else "train"
        session_seed = rng.randrange(2**31)
        session_rng = random.Random(session_seed)
        persona = session_rng.choice(personas)
        picked = session_rng.sample(queries, k=min(turns, len(queries)))
        sessions.append(
            build_session(
                f"{prefix}{index:05d}", persona, picked, session_rng,
                system_constraints=system_constraints, turn_constraints=turn_constraints,
                cumulative=cumulative, split=split, seed=session_seed, soft_constraints=soft_constraints,
            )
        )
    return sessions


def load_user_sessions(path: str | Path, hf_dataset: bool = False) -> tuple[list[Session], list[Quarantined]]:
    """Sessions a user supplies (JSONL in the contract, or a local HF dataset), validated row by row."""
    if not hf_dataset:
        result = read_rows(path, Session, check=_duplicate_checker())
        return result.rows, result.quarantined
    import json as _json
    import tempfile

    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
        for row in dataset:
            handle.write(_json.dumps(row, default=str) + "\n")
    result = read_rows(handle.name, Session, check=_duplicate_checker())
    Path(handle.name).unlink(missing_ok=True)
    for item in result.quarantined:
        item.source = f"{path} (row {item.line - 1})"
    return result.rows, result.quarantined


def _duplicate_checker():  # noqa: ANN202 - a small closure
    seen: set[str] = set()

    def check(session: Session) -> str | None:
        if session.session_id in seen:
            return f"duplicate session_id {session.session_id!r}"
        seen.add(session.session_id)
        for index in range(len(session.turns)):
            try:
                from reverso.prompts import session_constraints

                session_constraints(session, index)
            except engine.ConstraintError as exc:
                return f"turn {index}: {exc}"
        return None

    return check
