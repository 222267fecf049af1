"""The constraint engine's functions; reverso.constraints re-exports them (the package docstring says what they are for)."""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from reverso.constraints import soft, types_basic, types_extra, types_ifeval, types_implicit  # noqa: F401  (registers the types)
from reverso.constraints import ifbench  # noqa: F401  (evaluation-only types)
from reverso.constraints.conflicts import find_conflicts
from reverso.constraints.base import (
    REGISTRY,
    CheckContext,
    Constraint,
    ConstraintError,
    ConstraintType,
    ResponseView,
    Verdict,
    get_type,
    make,
    validate_kwargs,
)

__all__ = [
    "CheckContext", "Constraint", "ConstraintError", "Verdict", "parse", "make", "check", "check_all",
    "check_all_loose", "reverse", "describe", "sample_set", "render_instructions", "list_types",
    "is_verifiable", "is_reversible", "is_evaluation_only", "is_implicit", "reply_ends", "stable_rng", "find_conflicts", "build_witness",
]


def parse(spec: dict[str, Any]) -> Constraint:
    """A data-contract spec -> validated Constraint (ConstraintError names the bad id/field)."""
    if not isinstance(spec, dict) or "id" not in spec:
        raise ConstraintError(f"constraint spec must be an object with an 'id', got {spec!r}")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConstraintError(f"constraint {spec['id']!r}: kwargs must be an object, got {kwargs!r}")
    # IFEval files list every kwarg with null for the unused ones: drop those.
    return make(str(spec["id"]), {k: v for k, v in kwargs.items() if v is not None})


@lru_cache(maxsize=8192)
def _typed(constraint: Constraint) -> tuple[ConstraintType, Any]:
    """Type and validated kwargs, computed once per distinct constraint (they are immutable)."""
    ctype = get_type(constraint.id)
    return ctype, validate_kwargs(ctype, constraint.kwargs)


def is_verifiable(constraint: Constraint) -> bool:
    return get_type(constraint.id).verifiable


def is_reversible(constraint: Constraint) -> bool:
    """False for types whose complement has no faithful English (never sampled; docs/constraints.md)."""
    base_id = constraint.id.removeprefix("not:")
    return get_type(base_id).reversible


def check(constraint: Constraint, response: str, context: CheckContext | None = None) -> Verdict:
    return check_all([constraint], response, context)[0]


def check_all(
    constraints: Sequence[Constraint], response: str, context: CheckContext | None = None
) -> list[Verdict]:
    """Check one response against many constraints, sharing the per-response work."""
    view = ResponseView(response)
    ctx = context or CheckContext()
    verdicts = []
    for constraint in constraints:
        ctype, kwargs = _typed(constraint)
        if not ctype.verifiable:
            raise ConstraintError(f"{constraint.id!r} is a soft constraint: it needs a judge, not a rule")
        verdicts.append(ctype.check(kwargs, view, ctx))
    return verdicts


def loose_variants(response: str) -> list[str]:
    """IFEval's loose transforms: drop the first/last line and/or remove asterisks."""
    lines = response.split("\n")
    first_removed = "\n".join(lines[1:]).strip()
    last_removed = "\n".join(lines[:-1]).strip()
    both_removed = "\n".join(lines[1:-1]).strip()
    bases = [response, first_removed, last_removed, both_removed]
    return bases + [b.replace("*", "") for b in bases]


def check_all_loose(
    constraints: Sequence[Constraint], response: str, context: CheckContext | None = None
) -> list[bool]:
    """IFEval loose accuracy: a constraint passes if any loose variant of the response passes."""
    variants = [v for v in loose_variants(response) if v.strip()]
    results = [False] * len(constraints)
    for variant in variants:
        for index, verdict in enumerate(check_all(constraints, variant, context)):
            results[index] = results[index] or verdict.passed
    return results


def is_implicit(constraint: Constraint) -> bool:
    """True for rules every instruction carries unstated (``reverso:reply_ends``): never rendered into a prompt."""
    return get_type(constraint.id.removeprefix("not:")).implicit


def reply_ends() -> Constraint:
    """The implicit rule "the reply ends"; ``check`` it with ``CheckContext(finished=...)``."""
    return make(types_implicit.REPLY_ENDS)


def is_evaluation_only(constraint: Constraint) -> bool:
    """True for types scored in evaluation only (IFBench's): never in training sessions."""
    return get_type(constraint.id.removeprefix("not:")).evaluation_only


def reverse(constraint: Constraint) -> Constraint:
    """The exact complement: ``check(reverse(c), t).passed == not check(c, t).passed``."""
    ctype, kwargs = _typed(constraint)
    new_id, new_kwargs = ctype.reverse(kwargs)
    return make(new_id, new_kwargs)


def stable_rng(*parts: object) -> random.Random:
    """A Random seeded from the parts' text, identical across runs and processes."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def describe(constraint: Constraint, rng: random.Random) -> str:
    ctype, kwargs = _typed(constraint)
    return ctype.describe(kwargs, rng)


def render_instructions(constraints: Iterable[Constraint], phrasing_seed: object) -> str:
    """The numbered English rule list for a prompt; phrasing is chosen by a stable seed."""
    lines = []
    for number, constraint in enumerate((c for c in constraints if not is_implicit(c)), start=1):
        rng = stable_rng(phrasing_seed, constraint.id, constraint.kwargs_json)
        lines.append(f"{number}. {describe(constraint, rng)}")
    return "\n".join(lines)


def _groups(ctype: ConstraintType) -> frozenset[str]:
    return frozenset({ctype.group or ctype.id})


def compatible(chosen: Iterable[Constraint], candidate_id: str) -> bool:
    """True when ``candidate_id`` shares no group with, and declares no conflict against, ``chosen``."""
    cand = get_type(candidate_id)
    cand_groups = _groups(cand)
    for existing in chosen:
        other = get_type(existing.id)
        other_groups = _groups(other)
        if cand_groups & other_groups:
            return False
        if cand.conflicts & other_groups or other.conflicts & cand_groups:
            return False
    return True


def sample_set(
    rng: random.Random,
    count: int,
    context: CheckContext | None = None,
    existing: Sequence[Constraint] = (),
    attempts: int = 20,
    types: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Constraint]:
    """Sample ``count`` mutually compatible verifiable constraints (also compatible with ``existing``).

    A candidate joins the set only if it shares no exclusive group with the set (``compatible``)
    and no mix of originals and reverses would contradict (``find_conflicts(any_reversal=True)``):
    the reverse stage may reverse any subset. Greedy over a shuffled pool; a few reshuffles get
    past draws where an early pick (say, JSON output) rules out too many others. Raises
    ConstraintError if no compatible set is found. ``types`` limits the pool to those ids and
    ``exclude`` removes ids from it: held-out types for an out-of-distribution split.
    """
    ctx = context or CheckContext()
    pool = sorted(cid for cid in sampleable_types() if (types is None or cid in types) and cid not in exclude)
    best: list[Constraint] = []
    for _ in range(attempts):
        rng.shuffle(pool)
        picked: list[Constraint] = []
        for cid in pool:
            if len(picked) == count:
                break
            if not compatible([*existing, *picked], cid):
                continue
            candidate = make(cid, REGISTRY[cid].sample(rng, ctx))
            if not find_conflicts([*existing, *picked, candidate], any_reversal=True):
                picked.append(candidate)
        if len(picked) == count:
            return picked
        best = max(best, picked, key=len)
    raise ConstraintError(
        f"could only sample {len(best)} compatible constraints of {count} requested "
        f"({len(pool)} sampleable types, {len(existing)} already active); ask for fewer"
    )


def sampleable_types() -> list[str]:
    """Ids ``sample_set`` may draw: verifiable, reversible, sampled (collect's constraint pool)."""
    return sorted(cid for cid, ctype in REGISTRY.items() if ctype.sampled and ctype.verifiable and ctype.reversible)


def sample_soft(rng: random.Random, count: int) -> list[Constraint]:
    """``count`` soft constraints of distinct kinds (tone, audience, style, ...), for judged sessions."""
    kinds = sorted(cid for cid, ctype in REGISTRY.items() if not ctype.verifiable and cid != "soft:criteria")
    if count > len(kinds):
        raise ConstraintError(f"at most {len(kinds)} soft constraints per session, {count} requested")
    return [make(cid, REGISTRY[cid].sample(rng, CheckContext())) for cid in rng.sample(kinds, count)]


def build_witness(constraints: Sequence[Constraint], context: CheckContext | None = None) -> str | None:
    """A response passing every verifiable constraint in ``constraints``, or None if none was found."""
    from reverso.constraints.witness import build_witness as build

    return build(constraints, context or CheckContext())


def list_types() -> list[tuple[str, str, str]]:
    """(id, example description, reverse id) for every registered type, sorted by id."""
    rows = []
    for cid in sorted(REGISTRY):
        ctype = REGISTRY[cid]
        example = make(cid, ctype.sample(random.Random(0), CheckContext()))
        rows.append((cid, describe(example, random.Random(0)), reverse(example).id))
    return rows
