"""Row schemas of the JSONL data contracts (see docs/architecture.md).

Every row carries ``schema_version``. Constraint specs are kept as plain data here; only the
constraint engine decides whether an id and its kwargs mean something (see ``validate_specs``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value}; this reverso reads {SCHEMA_VERSION}")
        return value


class ConstraintSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    cumulative: bool = True


class Session(_Row):
    session_id: str = Field(min_length=1)
    system: str
    system_constraints: list[ConstraintSpec] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    split: Literal["train", "eval"]
    seed: int
    # False for prompts that already state their constraints in the user's words (official
    # IFEval / Multi-IF files): then no rule list is rendered into the system message.
    render_rules: bool = True


class SamplerInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    backend: str
    temperature: float
    seed: int


class Response(_Row):
    session_id: str
    turn: int = Field(ge=0)
    sample_idx: int = Field(ge=0)
    history: list[Message]
    text: str
    model: str
    sampler: SamplerInfo
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class Verdict(_Row):
    session_id: str
    turn: int = Field(ge=0)
    sample_idx: int = Field(ge=0)
    constraints: list[ConstraintSpec]
    passed: list[bool]
    reasons: list[str]
    judge: str
    reversed_constraints: list[ConstraintSpec]

    @model_validator(mode="after")
    def _aligned(self) -> Verdict:
        n = len(self.constraints)
        if not (len(self.passed) == len(self.reasons) == len(self.reversed_constraints) == n):
            raise ValueError("constraints, passed, reasons and reversed_constraints must align")
        return self


class Pair(_Row):
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1, max_length=1)
    rejected: list[Message] = Field(min_length=1, max_length=1)
    margin: int = Field(ge=0)
    constraints: list[ConstraintSpec]
    session_id: str
    turn: int = Field(ge=0)
    builder: Literal["rpo", "dpo", "dpo_paper", "rpo_one_way", "rpo_finish"]
    # The rejected reply was cut off at the token cap (rpo_finish: it fails the implicit "the reply ends").
    rejected_cut: bool = False

    @model_validator(mode="after")
    def _non_empty(self) -> Pair:
        for name in ("chosen", "rejected"):
            message = getattr(self, name)[0]
            if message.role != "assistant":
                raise ValueError(f"{name} must be one assistant message")
            if not message.content.strip():
                raise ValueError(f"{name} is empty")
        return self


class Example(_Row):
    """One supervised example (the SFT builders): a prompt and the one reply that answers it perfectly."""

    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1, max_length=1)
    constraints: list[ConstraintSpec]
    session_id: str
    turn: int = Field(ge=0)
    builder: Literal["hindsight_sft", "verified_sft"]

    @model_validator(mode="after")
    def _non_empty(self) -> Example:
        message = self.completion[0]
        if message.role != "assistant":
            raise ValueError("completion must be one assistant message")
        if not message.content.strip():
            raise ValueError("completion is empty")
        return self
