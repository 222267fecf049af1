"""reverse: judge every (response, active constraint) and write the reversed instruction.

For a response y, ``reversed_constraints`` keeps each constraint y passed and replaces each one it
failed by its exact complement, so y is a perfect response to the rewritten instruction x_S(y).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from reverso import constraints as engine
from reverso.config_base import _Section
from reverso.contracts import ConstraintSpec, Response, Session, Verdict
from reverso.io import (
    Quarantined,
    enforce_quarantine_limit,
    read_rows,
    write_json,
    write_jsonl,
    write_quarantine,
)
from reverso.prompts import session_constraints


class ReverseParams(_Section):
    """``reverse``: judge responses and reverse failed constraints."""

    @model_validator(mode="after")
    def _judge_settings(self) -> ReverseParams:
        if self.soft_judge == "openai" and not (self.judge_base_url and self.judge_model):
            raise ValueError("reverse.judge_base_url and reverse.judge_model are required for soft_judge 'openai'")
        if self.soft_judge == "hf" and not self.judge_model:
            raise ValueError("reverse.judge_model (a local model folder) is required for soft_judge 'hf'")
        return self

    soft_judge: Literal["none", "hf", "openai"] = "none"  # soft constraints off by default
    judge_base_url: str | None = None  # openai judge: any OpenAI-compatible endpoint
    judge_model: str | None = None  # openai judge: model name; hf judge: local model folder
    # The judge's API key is read from this environment variable; it is never written anywhere.
    judge_api_key_env: str = "REVERSO_JUDGE_API_KEY"
    judge_trust_remote_code: bool = False
    # How a failed soft constraint is reversed: "rule" flips its modal ("must" -> "must not"); "judge" has
    # the judge model word the opposite (schema-checked, rule flip when it never fits). Either way the
    # reversal is kept only when re-judging confirms the response meets it.
    soft_reversal: Literal["rule", "judge"] = "rule"
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)


def session_problem(session: Session) -> str | None:
    """Reason to quarantine a session whose constraint specs the engine rejects."""
    try:
        for turn in range(len(session.turns)):
            session_constraints(session, turn)
    except engine.ConstraintError as exc:
        return f"session {session.session_id}: {exc}"
    return None


def make_soft_judge(params: ReverseParams) -> Any:
    """The configured soft-constraint judge, or None when soft constraints are off."""
    if params.soft_judge == "none":
        return None
    from reverso.constraints.judge import make_judge

    if params.soft_judge == "openai":
        return make_judge("openai", base_url=params.judge_base_url, model=params.judge_model,
                          api_key_env=params.judge_api_key_env)
    return make_judge("hf", model_path=params.judge_model, trust_remote_code=params.judge_trust_remote_code)


def _reverse_soft(judge: Any, constraint: engine.Constraint, how: str) -> engine.Constraint:
    """The reversed soft constraint; with ``how == "judge"`` its English is the judge model's."""
    flipped = engine.reverse(constraint)
    if how != "judge":
        return flipped
    opposite = judge.opposite(engine.describe(constraint, engine.stable_rng(constraint.id)))
    return engine.make(flipped.id, {**flipped.kwargs, "opposite": opposite}) if opposite else flipped


def _judge_soft(judge: Any, soft: list[engine.Constraint], text: str, context: engine.CheckContext,
                how: str) -> tuple[list[engine.Verdict], dict[engine.Constraint, engine.Constraint], str | None]:
    """Judge soft constraints; each failed one is reversed, and the reversal must be confirmed by re-judging."""
    verdicts = judge.judge(soft, text, context)
    if any(v.error for v in verdicts):
        return verdicts, {}, next(v.reason for v in verdicts if v.error)
    flipped = {c: _reverse_soft(judge, c, how) for c, v in zip(soft, verdicts, strict=True) if not v.passed}
    if flipped and not all(v.passed and not v.error for v in judge.judge(list(flipped.values()), text, context)):
        return verdicts, {}, "a reversed soft constraint was not confirmed by re-judging the response"
    return verdicts, flipped, None


def judge_response(
    session: Session, response: Response, params: ReverseParams, judge: Any = None
) -> tuple[Verdict | None, str | None]:
    """A verdict row for one response, or a reason to quarantine it."""
    if not response.text.strip():
        return None, "empty response text"
    active = session_constraints(session, response.turn)
    soft = [c for c in active if not engine.is_verifiable(c)]
    if soft and judge is None:
        return None, f"soft constraints {[c.id for c in soft]} need a judge, but reverse.soft_judge is 'none'"
    context = engine.CheckContext(prompt=session.turns[response.turn].user)
    rule = engine.check_all([c for c in active if engine.is_verifiable(c)], response.text, context)
    soft_verdicts, soft_reversed, problem = (_judge_soft(judge, soft, response.text, context, params.soft_reversal)
                                             if soft else ([], {}, None))
    if problem:
        return None, problem
    by_constraint = iter(rule), iter(soft_verdicts)
    verdicts = [next(by_constraint[0] if engine.is_verifiable(c) else by_constraint[1]) for c in active]
    reversed_ = [c if v.passed else soft_reversed.get(c) or engine.reverse(c)
                 for c, v in zip(active, verdicts, strict=True)]
    row = Verdict(
        session_id=response.session_id, turn=response.turn, sample_idx=response.sample_idx,
        constraints=[ConstraintSpec(**c.spec()) for c in active],
        passed=[v.passed for v in verdicts], reasons=[v.reason for v in verdicts],
        judge="rule" if not soft else f"rule+{judge.name}",
        reversed_constraints=[ConstraintSpec(**c.spec()) for c in reversed_],
    )
    return row, None


def reverse(
    params: ReverseParams,
    sessions_in: str | Path,
    responses_in: str | Path,
    verdicts_out: str | Path,
    metrics_out: str | Path,
) -> dict[str, Any]:
    """Run the reverse stage; every response ends as a verdict row or a quarantined row."""
    sessions = read_rows(sessions_in, Session, check=session_problem)
    by_id = {s.session_id: s for s in sessions.rows}

    def response_problem(row: Response) -> str | None:
        session = by_id.get(row.session_id)
        if session is None:
            return f"unknown or quarantined session_id {row.session_id!r}"
        if row.turn >= len(session.turns):
            return f"turn {row.turn} out of range: session has {len(session.turns)} turns"
        return None

    responses = read_rows(responses_in, Response, check=response_problem)
    quarantined = list(responses.quarantined)
    verdicts: list[Verdict] = []
    judge = make_soft_judge(params)
    for response, line in zip(responses.rows, responses.lines, strict=True):
        row, reason = judge_response(by_id[response.session_id], response, params, judge)
        if row is None:
            quarantined.append(Quarantined(str(responses_in), line, reason or "", response.model_dump_json()))
        else:
            verdicts.append(row)
    write_jsonl(verdicts_out, verdicts)
    write_quarantine(verdicts_out, [*sessions.quarantined, *quarantined])
    enforce_quarantine_limit("reverse", responses.total, len(quarantined), params.max_quarantine_fraction)

    checked, passed = Counter[str](), Counter[str]()
    for row in verdicts:
        for spec, ok in zip(row.constraints, row.passed, strict=True):
            checked[spec.id] += 1
            passed[spec.id] += ok
    metrics = {
        "responses_in": responses.total,
        "verdicts_out": len(verdicts),
        "quarantined": len(quarantined),
        "sessions_quarantined": len(sessions.quarantined),
        "all_constraints_passed": sum(all(r.passed) for r in verdicts),
        "pass_rate": {cid: round(passed[cid] / checked[cid], 4) for cid in sorted(checked)},
    }
    write_json(metrics_out, metrics)
    return metrics
