"""The ``evaluate`` section and its blocks (suite sizes, official files, the judge, the bootstrap)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reverso.config_base import HeldOutTypes, _Section
from reverso.generation.config import OpenVINOParams, ServerFields


class SuiteSizes(_Section):
    """Prompts (ifeval) or sessions (multi_if, sysbench) per generated suite; 0 turns one off.

    The defaults are make run's demo (CIs ~ +-20 points, flagged in metrics/eval.json "power"). For a 95 %
    CI of at most about +-5 points on each headline metric (docs/evaluation.md), 400 units: they bound any
    proportion's half-width by 4.9 points (configs/eval/powered.yaml: 400 / 400 / 300).
    """

    ifeval: int = Field(24, ge=0)
    multi_if: int = Field(8, ge=0)
    sysbench: int = Field(3, ge=0)
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


class EvaluateParams(ServerFields):
    """``evaluate``: held-out suites, base vs policy, identical greedy decoding (server fields: generation/config.py)."""

    seed: int = 2024  # disjoint from collect.seed; suites also use the corpus' eval portion only
    suites: SuiteSizes = SuiteSizes()
    ifeval_constraints: tuple[int, int] = (1, 3)  # min, max constraints per prompt (IFEval: 1-4)
    multi_if_turns: int = Field(3, ge=1, le=5)
    sysbench_turns: int = Field(5, ge=1, le=8)
    sysbench_constraints: int = Field(3, ge=1, le=8)
    official: OfficialFiles = OfficialFiles()
    # A cut-off reply fails end/JSON/length rules; the greedy base loops to any cap (75 % cut at 256, 72 % at
    # 384 for +36 % time), so the demo stops at 256 and the study recipes at 384.
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(16, ge=1)  # hf backend
    # Greedy decoding of every model (base, policy, champion) on the same backend, in full precision.
    # vllm merges each adapter into the base once (vllm.merged_dir); openai asks the server for the
    # adapter under the name served_adapters gives it (docs/scale-out.md).
    backend: Literal["openvino", "hf", "vllm", "openai"] = "openvino"
    # backend openai: evaluate's model label (policy, champion, ...) -> the name the server serves that
    # adapter under (vllm serve --enable-lora --lora-modules NAME=PATH); base uses model_name.
    served_adapters: dict[str, str] = {}
    # fp16 weights + f32 inference and KV cache: greedy ids = HF fp32 (docs/benchmarks.md).
    openvino: OpenVINOParams = OpenVINOParams()
    judge: EvaluateJudge = EvaluateJudge()
    bootstrap: BootstrapParams = BootstrapParams()
    # The report flags a headline metric whose 95 % CI is wider than +- this (suites too small).
    target_halfwidth: float = Field(0.05, gt=0.0, le=0.5)
    # Also answer the suites with the current @champion, so challenger vs champion is a paired
    # difference on the same prompts in the same run (promote refuses evidence from another champion).
    with_champion: bool = True
    # a model's greedy answers to the same prompts with the same settings on the same CPU are reused
    # (.reverso/answer-cache, evaluate/answer_cache.py): an improve round answers only its challenger
    reuse_answers: bool = True
    # Types absent from training (a subset of collect.held_out_types): the "ood" suite draws its rules
    # only from them and the generated in-distribution suites never use them.
    held_out_types: HeldOutTypes = []

    @model_validator(mode="after")
    def _ordered_range(self) -> EvaluateParams:
        low, high = self.ifeval_constraints
        if not 1 <= low <= high:
            raise ValueError("evaluate.ifeval_constraints must be [min, max] with 1 <= min <= max")
        if self.suites.ood and not self.held_out_types:
            raise ValueError("evaluate.suites.ood needs evaluate.held_out_types (the types training never saw)")
        return self
