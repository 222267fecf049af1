"""The constraint engine: THE place in reverso that knows what a constraint means.

Everything else handles constraints as specs (``{"id": ..., "kwargs": {...}}``) and calls the
functions below: ``parse``, ``check_all``, ``reverse``, ``describe``, ``sample_set``,
``render_instructions``, ``find_conflicts`` (why a set contradicts itself) and ``build_witness``
(a response that passes every constraint of a set: the proof that it does not).
"""

from reverso.constraints.base import get_type, make
from reverso.constraints.engine import (
    CheckContext, Constraint, ConstraintError, Verdict, build_witness, check, check_all, check_all_loose, compatible,
    describe, find_conflicts, is_evaluation_only, is_implicit, is_reversible, is_verifiable, list_types, parse,
    render_instructions, reply_ends, reverse, sample_set, sample_soft, sampleable_types, stable_rng,
)

__all__ = [
    "CheckContext", "Constraint", "ConstraintError", "Verdict", "parse", "make", "get_type", "check", "check_all",
    "check_all_loose", "reverse", "describe", "sample_set", "sample_soft", "sampleable_types", "compatible",
    "render_instructions", "list_types", "is_verifiable", "is_reversible", "is_evaluation_only", "is_implicit",
    "reply_ends", "stable_rng", "find_conflicts", "build_witness",
]
