"""Evaluation parameter blocks (suite sizes, official files, the judge, the bootstrap) and the held-out
type check ``collect`` and ``evaluate`` share; ``EvaluateParams`` itself is in config.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reverso.config_base import _Section


def _sampleable(ids: list[str]) -> list[str]:
    """Held-out type ids must be types collect could sample (constraints.sampleable_types)."""
    from reverso.constraints import sampleable_types

    unknown = sorted(set(ids) - set(sampleable_types()))
    if unknown:
        raise ValueError(f"{unknown} are not sampleable constraint types; choose from `reverso constraints`")
    return sorted(set(ids))


class SuiteSizes(_Section):
    """Prompts (ifeval) or sessions (multi_if, sysbench) per generated suite; 0 turns one off.

    Sized for a 95 % CI of at most about +-5 points on each headline metric (docs/evaluation.md):
    400 units bound any proportion's half-width by 4.9 points; a SysBench session averages 5 turns.
    """

    ifeval: int = Field(400, ge=0)
    multi_if: int = Field(400, ge=0)
    sysbench: int = Field(300, ge=0)
    ood: int = Field(0, ge=0)  # IFEval-style prompts whose rules are all held-out types (evaluate.held_out_types)


class OfficialFiles(_Section):
    """Official benchmark files a user drops in (never downloaded); evaluated in addition."""

    ifeval: str | None = None  # IFEval input_data.jsonl
    multi_if: str | None = None  # Multi-IF CSV
    ifbench: str | None = None  # IFBench test JSONL
    sysbench: str | None = None  # SysBench-style JSON


class EvaluateJudge(_Section):
    """``evaluate.judge``: who judges soft criteria (SysBench files); without one they are "not scored"."""

    @model_validator(mode="after")
    def _settings(self) -> EvaluateJudge:
        if self.backend == "openai" and not (self.base_url and self.model):
            raise ValueError("evaluate.judge.base_url and evaluate.judge.model are required for backend 'openai'")
        if self.backend == "hf" and not self.model:
            raise ValueError("evaluate.judge.model (a local model folder) is required for backend 'hf'")
        return self

    backend: Literal["none", "hf", "openai"] = "none"
    base_url: str | None = None  # openai: any OpenAI-compatible endpoint
    model: str | None = None  # openai: model name; hf: local model folder
    api_key_env: str = "REVERSO_JUDGE_API_KEY"  # the key is read from this env var, never stored
    trust_remote_code: bool = False


class BootstrapParams(_Section):
    """``evaluate.bootstrap``: percentile bootstrap over prompts/sessions for every CI."""

    resamples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
