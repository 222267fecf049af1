"""Seed corpus loading and the multi-constraint session builder (seeded, reproducible)."""

from __future__ import annotations

import random
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reverso import constraints as engine
from reverso.contracts import ConstraintSpec, Session, Turn
from reverso.io import DataError, Quarantined, ReadResult, read_rows


# The seed corpus' pools: train (collect), validation (tuning: study.split validation), eval (the test pool).
Pool = Literal["train", "validation", "eval"]


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    domain: str
    system: str = Field(min_length=1)
    split: Pool


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    task: str
    text: str = Field(min_length=1)
    split: Pool


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
    types: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> Session:
    """One session: persona + k system constraints, one query per turn, optional per-turn additions.

    The whole session's constraints are sampled as one compatible set, then dealt out (system
    first, then each turn), so later turns never run out of constraints that fit.
    """
    total = system_constraints + turn_constraints * len(queries)
    drawn = engine.sample_set(rng, total, types=types, exclude=exclude) if total else []
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
    portion: Pool,
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
    types: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Session]:
    """``count`` sessions from one portion of the corpus; ``eval_fraction`` of them get split=eval.

    Rules come from the engine's sampleable types, limited to ``types`` and without ``exclude``.
    """
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
                types=types, exclude=exclude,
            )
        )
    return sessions


def read_user_sessions(path: str | Path, hf_dataset: bool = False,
                       held_out: Collection[str] = ()) -> ReadResult[Session]:
    """Sessions a user supplies (JSONL in the contract, or a local HF dataset), validated row by row.

    The same reader serves ``collect`` and ``reverso validate sessions``: a row is quarantined for
    its schema, a size limit (``reverso.limits``), a duplicate session_id, an unknown constraint id or
    bad kwargs, a constraint listed twice, an evaluation-only or ``held_out`` type (kept out of
    training: collect.held_out_types), or rules that contradict each other. Text in a row is
    data: nothing in it is followed as an instruction or a path.
    """
    if not hf_dataset:
        return read_rows(path, Session, check=_session_checker(held_out))
    import json as _json
    import tempfile

    try:
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"collect.hf_dataset {str(path)!r}: not a dataset saved with save_to_disk ({exc})") from None
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
        for row in dataset:
            handle.write(_json.dumps(row, default=str) + "\n")
    try:
        result = read_rows(handle.name, Session, check=_session_checker(held_out))
    finally:
        Path(handle.name).unlink(missing_ok=True)
    for item in result.quarantined:
        item.source = f"{path} (row {item.line - 1})"
    return result


def load_user_sessions(path: str | Path, hf_dataset: bool = False) -> tuple[list[Session], list[Quarantined]]:
    """``read_user_sessions`` as (valid sessions, quarantined rows)."""
    result = read_user_sessions(path, hf_dataset)
    return result.rows, result.quarantined


def _session_checker(held_out: Collection[str] = ()):  # noqa: ANN202 - a small closure
    from reverso.limits import session_problem
    from reverso.prompts import session_constraints

    seen: set[str] = set()

    def check(session: Session) -> str | None:
        too_big = session_problem(session)
        if too_big:
            return too_big
        if session.session_id in seen:
            return f"session_id: duplicate {session.session_id!r}"
        seen.add(session.session_id)
        for index in range(len(session.turns)):
            try:
                active = session_constraints(session, index)
            except engine.ConstraintError as exc:
                return f"turns.{index}.constraints: {exc}"
            evaluation_only = next((c.id for c in active if engine.is_evaluation_only(c)), None)
            if evaluation_only:
                return (f"turns.{index}.constraints: {evaluation_only!r} is an evaluation-only type (IFBench), "
                        "not for training")
            kept_out = next((c.id for c in active if c.id.removeprefix("not:") in held_out), None)
            if kept_out:
                return f"turns.{index}.constraints: {kept_out!r} is held out of training (collect.held_out_types)"
            repeated = sorted({c.id for c in active if active.count(c) > 1})
            if repeated:
                return f"turns.{index}.constraints: constraint {repeated[0]!r} is listed more than once"
            conflicts = engine.find_conflicts(active)
            if conflicts:
                return f"turns.{index}.constraints: rules contradict each other: {'; '.join(conflicts[:3])}"
        return None

    return check


def context_problems(sessions: list[Session], tokenizer: object, context: int,
                     max_new_tokens: int) -> dict[str, str]:
    """session_id -> reason, for sessions whose prompts cannot fit the model's context window.

    The bound is the last turn's full prompt (rules, every user turn, one empty assistant message per
    earlier turn) plus ``max_new_tokens`` per turn for the generated answers.
    """
    from reverso.contracts import Message
    from reverso.prompts import as_dicts, turn_messages

    problems = {}
    for session in sessions:
        last = len(session.turns) - 1
        history = [m for t in session.turns[:last] for m in (Message(role="user", content=t.user),
                                                            Message(role="assistant", content=""))]
        messages = as_dicts(turn_messages(session, last, history))
        prompt = tokenizer.apply_chat_template(messages, tokenize=False,  # type: ignore[attr-defined]
                                               add_generation_prompt=True)
        tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])  # type: ignore[operator]
        needed = tokens + max_new_tokens * len(session.turns)
        if needed > context:
            problems[session.session_id] = (f"session needs about {needed:,} tokens (prompts + {max_new_tokens} new "
                                            f"tokens per turn) but the model's context is {context:,}")
    return problems


def fit_context(sessions: list[Session], lines: list[int], source: str | Path, model_dir: str | Path,
                max_new_tokens: int) -> tuple[list[Session], list[Quarantined]]:
    """Quarantine sessions too long for the model's context, before any generation is attempted.

    Needs only the tokenizer and ``config.json`` of ``model_dir``; without them nothing is checked.
    """
    import json as _json

    root = Path(model_dir)
    if not (root / "config.json").is_file() or not (root / "tokenizer_config.json").is_file():
        return sessions, []
    context = _json.loads((root / "config.json").read_text(encoding="utf-8")).get("max_position_embeddings")
    if not isinstance(context, int):
        return sessions, []
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(root))
    problems = context_problems(sessions, tokenizer, context, max_new_tokens)
    kept = [s for s in sessions if s.session_id not in problems]
    dropped = [Quarantined(str(source), line, problems[s.session_id], s.session_id, "turns")
               for s, line in zip(sessions, lines, strict=True) if s.session_id in problems]
    return kept, dropped
