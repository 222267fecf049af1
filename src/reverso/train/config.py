"""``train`` params and the study's arms: a pair builder x a loss (the DPO family) x a margin.

An arm is data, never code: ``builder`` picks the pair set (data/pairs/<builder>/), ``loss`` is a
weighted list of loss terms computed by TRL's DPOTrainer, and ``margin_mode`` says how RPO's
adaptive margin gamma * g enters each pairwise term (docs/architecture.md, "Arms"):

    released:  the term's preference score Delta becomes Delta - gamma * g     (the authors' code)
    paper:     Delta becomes Delta - gamma * g / beta, i.e. beta*Delta - gamma*g inside the sigmoid
    none:      no margin (plain DPO / IPO / ...)

Delta is the policy-minus-reference log-ratio difference of chosen and rejected (summed over tokens;
averaged per token for the length-normalised terms ipo and simpo, whose margin shifts that average).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reverso.config_base import _Section

# Pairwise terms the margin composes with, and the per-pair term that does not need one.
PAIRWISE_LOSSES = ("sigmoid", "ipo", "hinge", "robust", "simpo")
LOSS_TYPES = (*PAIRWISE_LOSSES, "sft")
# Terms whose preference score is the per-token average (TRL: ipo, and sigmoid_norm under simpo).
LENGTH_NORMALISED = frozenset({"ipo", "simpo"})
PAIR_BUILDERS = ("rpo", "dpo", "dpo_paper", "rpo_one_way", "rpo_finish")
SFT_BUILDERS = ("hindsight_sft", "verified_sft")  # examples (prompt, reply), trained with loss [sft] alone
BUILDERS = (*PAIR_BUILDERS, *SFT_BUILDERS)
Builder = Literal["rpo", "dpo", "dpo_paper", "rpo_one_way", "rpo_finish", "hindsight_sft", "verified_sft"]


class LossTerm(_Section):
    """One weighted term of the training loss (``train.loss`` entries; a bare name means weight 1)."""

    # sigmoid = DPO; ipo; hinge; robust (conservative DPO, needs train.label_smoothing); sft = NLL of
    # the chosen reply (RPO's chosen is a perfect answer to its prompt); simpo = SimPO: reference-free,
    # length-normalised, with the target margin train.simpo_gamma.
    type: Literal["sigmoid", "ipo", "hinge", "robust", "sft", "simpo"]
    weight: float = Field(1.0, gt=0.0)


def _terms(value: Any) -> Any:
    """``"sigmoid"``, ``["sigmoid", {"type": "sft", "weight": 0.2}]`` -> a list of term mappings."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [{"type": v} if isinstance(v, str) else v for v in value]
    return value


def check_loss(loss: list[LossTerm], margin_mode: str, label_smoothing: float, builder: str = "rpo") -> None:
    """The loss combinations TRL computes in one pass and the margin can shift exactly."""
    kinds = [t.type for t in loss]
    if not loss:
        raise ValueError("loss must name at least one term")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"loss names a term twice: {kinds}")
    if builder in SFT_BUILDERS:
        if kinds != ["sft"]:
            raise ValueError(f"builder {builder} makes examples (a prompt and one reply), not pairs: its loss is "
                             f"[sft] alone, got {kinds}")
        return
    pairwise = [k for k in kinds if k in PAIRWISE_LOSSES]
    if not pairwise:
        raise ValueError(f"loss {kinds} on builder {builder} has no pairwise term: add one of "
                         f"{list(PAIRWISE_LOSSES)}, or train SFT alone on an example builder {list(SFT_BUILDERS)}")
    if "simpo" in kinds and len(pairwise) > 1:
        raise ValueError("simpo is reference-free and cannot share a loss with reference-based terms "
                         f"{[k for k in pairwise if k != 'simpo']}")
    if margin_mode != "none" and len(pairwise) > 1:
        raise ValueError(f"the RPO margin shifts one pairwise term exactly; loss {kinds} has {len(pairwise)} "
                         "(set margin_mode: none, or keep one pairwise term plus sft)")
    if "robust" in kinds and not 0.0 < label_smoothing < 0.5:
        raise ValueError(f"loss robust needs 0 < label_smoothing < 0.5 (the assumed label-flip rate), "
                         f"got {label_smoothing}")


class ArmSpec(_Section):
    """One ``study.arms`` entry: which pairs, which loss, which margin (and optional loss settings)."""

    builder: Builder
    loss: list[LossTerm] = [LossTerm(type="sigmoid")]
    margin: Literal["released", "paper", "none"] = "none"
    beta: float | None = Field(None, gt=0.0)
    gamma: float | None = Field(None, ge=0.0)
    label_smoothing: float | None = Field(None, ge=0.0, lt=0.5)
    simpo_gamma: float | None = Field(None, ge=0.0)
    learning_rate: float | None = Field(None, gt=0.0)
    pairs_per_step: int | None = Field(None, ge=1)  # pairs (or examples) per optimizer step
    # Example- or pair-passes the arm trains for: max_steps = ceil(budget / pairs_per_step) (epochs unused).
    budget: int | None = Field(None, ge=1)
    lora: bool | None = None  # false: full fine-tuning (the learning rates full FT uses are ~10x lower)
    # Start from another arm's trained adapter (same replicate; that arm must come earlier in study.arms):
    # e.g. SFT first, then RPO. Recorded in the arm's lineage (metrics and MLflow: start_adapter_md5).
    init_from: str | None = None

    _loss = field_validator("loss", mode="before")(lambda cls, v: _terms(v))

    def train_fields(self) -> dict[str, Any]:
        """The ``train`` fields this arm sets (unset optional ones keep the train section's values)."""
        fields = {"builder": self.builder, "loss": [t.model_dump() for t in self.loss], "margin_mode": self.margin}
        extra = ("beta", "gamma", "label_smoothing", "simpo_gamma", "learning_rate", "pairs_per_step")
        return fields | {k: getattr(self, k) for k in extra if getattr(self, k) is not None}


# The paper's three arms, also what a bare ``train.arm: dpo`` (etc.) means.
BUILTIN_ARMS: dict[str, ArmSpec] = {
    "dpo": ArmSpec(builder="dpo", margin="none"),
    "rpo": ArmSpec(builder="rpo", margin="released"),
    "rpo_no_margin": ArmSpec(builder="rpo", margin="none"),
}


def _normal(field: str, value: Any) -> Any:
    """A field's value in one spelling, to compare an arm's settings with a built-in arm's."""
    if field == "loss":
        return [LossTerm.model_validate(t if not isinstance(t, LossTerm) else t.model_dump()).model_dump()
                for t in _terms(value)]
    return value


class LoraParams(_Section):
    enabled: bool = True
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"  # paper: lora_target all


class TrainParams(_Section):
    """``train``: the arm (pair builder x loss x margin), its optimiser and the authors' regime."""

    arm: str = "rpo"  # the arm's name in MLflow and metrics; rpo | dpo | rpo_no_margin alone also set the rest
    builder: Builder = "rpo"
    loss: list[LossTerm] = [LossTerm(type="sigmoid")]
    beta: float = Field(0.1, gt=0.0)
    gamma: float = Field(0.05, ge=0.0)  # margin weight (released units: the paper's gamma / beta)
    # released (the authors' code): beta*(D - gamma*g); paper: beta*D - gamma*g; none: no margin.
    margin_mode: Literal["paper", "released", "none"] = "released"
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)  # loss robust: the assumed label-flip rate
    simpo_gamma: float = Field(0.5, ge=0.0)  # loss simpo: target reward margin (SimPO's gamma; TRL's default)
    learning_rate: float = Field(5e-4, gt=0.0)
    # The authors' regime (LLaMA-Factory configs): cosine decay after a 10 % linear warm-up (they train 3
    # epochs; the CPU demo trains one).
    lr_scheduler_type: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: float = Field(1.0, gt=0.0)
    max_steps: int = -1
    batch_size: int = Field(1, ge=1)  # pairs per micro-batch (per device); on CPU 1 is fastest
    # Pairs per optimizer step (the authors: >= 128); accumulation is derived from it, batch_size and the
    # number of processes, and capped by the training set (a set smaller than this is one step per epoch).
    pairs_per_step: int = Field(16, ge=1)
    gradient_accumulation_steps: int | None = Field(None, ge=1)  # set: overrides pairs_per_step
    max_length: int = Field(512, ge=16)
    precompute_ref_log_probs: bool = True
    # bf16 autocast: "auto" turns it on where the CPU has native bf16 (AMX / avx512_bf16) or on a GPU that
    # supports it, off elsewhere; the choice is recorded in metrics/train.json.
    bf16: bool | Literal["auto"] = "auto"
    # Activations recomputed in the backward: ~30 % a step for a lower memory peak.
    gradient_checkpointing: bool = True
    # The policy / reference forward (reverso.train.forward): TRL's stock two rows per pair; the LM head
    # on scored positions only; or one packed row per pair, the shared prompt computed once.
    forward: Literal["stock", "completion_head", "shared_prompt"] = "shared_prompt"
    # Micro-batches of pairs of similar length (less padding), shuffled batch order.
    group_by_length: bool = True
    # glibc: send each step's activations to mmap and back instead of a fragmenting heap (reverso.memory)
    return_freed_memory: bool = True
    # e.g. "sdpa" or "flash_attention_2" on GPU; None lets transformers choose.
    attn_implementation: str | None = None
    logging_steps: int = Field(1, ge=1)
    # Held-out pairs scored at each evaluation (the rule-reading diagnostic), whole couples drawn with the
    # seed: each evaluation costs a forward of every pair it scores. null = all.
    held_out_pairs: int | None = Field(None, ge=2)
    # Checkpoints live in .reverso/checkpoints/ (outside DVC outs, which DVC deletes before a
    # rerun); a killed run resumes from the newest one with the same data and params.
    save_steps: int = Field(4, ge=1)
    seed: int = 42
    lora: LoraParams = LoraParams()

    _loss = field_validator("loss", mode="before")(lambda cls, v: _terms(v))

    @model_validator(mode="before")
    @classmethod
    def _arm_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("arm") in BUILTIN_ARMS:
            builtin = BUILTIN_ARMS[data["arm"]].train_fields()
            clash = sorted(k for k in builtin if k in data and _normal(k, data[k]) != _normal(k, builtin[k]))
            if clash:
                raise ValueError(
                    f"train.arm {data['arm']!r} is a built-in arm ({', '.join(f'{k}: {builtin[k]}' for k in clash)}) "
                    f"but {', '.join(f'{k}: {data[k]}' for k in clash)} was set: give this arm another name")
            data = {**builtin, **data}
        return data

    @model_validator(mode="after")
    def _loss_composes(self) -> TrainParams:
        check_loss(self.loss, self.margin_mode, self.label_smoothing, self.builder)
        return self

    @property
    def sft_only(self) -> bool:
        """No pairwise term: the SFT path (TRL's SFTTrainer on an example builder's set)."""
        return self.builder in SFT_BUILDERS

    @property
    def pair_set(self) -> str:
        """Which pair set (data/pairs/<set>/) this arm trains on."""
        return self.builder

    @property
    def margin_gamma(self) -> float:
        """The gamma the loss applies: 0 when margin_mode is none (or the arm trains SFT alone: no pair, no g)."""
        return 0.0 if self.margin_mode == "none" or self.sft_only else self.gamma

    @property
    def reference_free(self) -> bool:
        return any(t.type == "simpo" for t in self.loss)


def with_arm(train: TrainParams, name: str, spec: ArmSpec, seed: int | None = None) -> TrainParams:
    """The train section for one arm (and seed), validated as a whole."""
    fields = train.model_dump() | spec.train_fields() | {"arm": name}
    if spec.lora is not None:
        fields["lora"] = fields["lora"] | {"enabled": spec.lora}
    if spec.budget is not None:
        fields["max_steps"] = math.ceil(spec.budget / fields["pairs_per_step"])
    if seed is not None:
        fields["seed"] = seed
    return TrainParams.model_validate(fields)
