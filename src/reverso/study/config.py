"""``study``: the replication study's parameters (arms, replicates, the primary comparison, the A/A floor)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reverso.config_base import _Section
from reverso.train.config import BUILTIN_ARMS, ArmSpec


class StudyParams(_Section):
    """``study``: the replication study — arms x seeds from the same pairs, one evaluation run."""

    # name -> pair builder x loss x margin (train.config.ArmSpec); each arm trains once per seed. Add an
    # arm in params, no code: e.g. rpo_sft: {builder: rpo, loss: [sigmoid, {type: sft, weight: 0.2}]}.
    # The run's label, recorded in metrics/study.json: a recipe under configs/study/ sets it to its own file
    # name, so a reported run says which recipe reproduces it (tests/test_study.py checks that it does).
    name: str = "params"
    arms: dict[str, ArmSpec] = dict(BUILTIN_ARMS)
    seeds: list[int] = [1, 2, 3]  # one replicate each: train.seed (LoRA init + data order) and its data draw
    # Each replicate collects its own sessions (collect.seed + its seed) -> its own pairs, so intervals
    # include data variance; false: every replicate trains on one draw (collect.seed).
    vary_data: bool = True
    # test: the reported suites (evaluate.seed) · validation: a disjoint draw of the same generators,
    # the only split to tune on.
    split: Literal["test", "validation"] = "test"
    validation_seed: int = 4242
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    bootstrap: int = Field(2000, ge=100)  # bootstrap resamples over prompts/sessions
    primary_suite: str = "multi_if"  # the suite whose headline metric the study's goal is stated on
    # The one comparison named before the run (arm a - arm b on primary_suite); every other difference
    # in the report is secondary. "base" is the untrained model. null: rpo - dpo when both arms run,
    # else the first arm - base.
    primary_comparison: tuple[str, str] | None = None
    # The A/A noise floor: the base model with every weight x (1 + aa_scale * N(0,1)) answers the same
    # suites; its difference from the base is what greedy decoding alone moves (0 = no A/A model).
    aa_scale: float = Field(1e-6, ge=0.0, le=1e-2)
    # What runs `study train-arm` in the DVC stage: `reverso`, or `accelerate launch ... -m reverso.cli`.
    train_launcher: str = "reverso"

    @field_validator("arms", mode="before")
    @classmethod
    def _named_arms(cls, value: Any) -> Any:
        # a list of built-in names is shorthand for those arms
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            unknown = [v for v in value if v not in BUILTIN_ARMS]
            if unknown:
                raise ValueError(f"unknown built-in arm(s) {unknown}; built-ins are {sorted(BUILTIN_ARMS)}, "
                                 "other arms are written as name: {builder, loss, margin}")
            return {v: BUILTIN_ARMS[v] for v in value}
        return value

    @model_validator(mode="after")
    def _distinct(self) -> StudyParams:
        if not self.arms:
            raise ValueError("study.arms must name at least one arm")
        bad = [name for name in self.arms if not name.replace("_", "").isalnum() or name == "base"]
        if bad:
            raise ValueError(f"study.arms names {bad}: use letters, digits and _ (and not 'base', the untrained model)")
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ValueError("study.seeds must be a non-empty list without repeats")
        for name, spec in self.arms.items():
            if spec.init_from is None:
                continue
            if spec.init_from not in self.arms or spec.init_from == name:
                raise ValueError(f"study.arms.{name}.init_from {spec.init_from!r}: name another arm of study.arms "
                                 f"({sorted(set(self.arms) - {name})})")
            if self.arms[spec.init_from].lora is False:
                raise ValueError(f"study.arms.{name}.init_from {spec.init_from!r} trains the full model (lora: false); "
                                 "an arm can only start from another arm's LoRA adapter")
        self.train_order()  # no cycles
        a, b = self.primary()
        unknown = [arm for arm in (a, b) if arm != "base" and arm not in self.arms]
        if unknown or a == b:
            raise ValueError(f"study.primary_comparison {[a, b]}: two different arms of study.arms (or base); "
                             f"{unknown or 'the same arm twice'} is not")
        return self

    def train_order(self) -> list[str]:
        """Arm names in an order where every arm trains after the arm it starts from (init_from)."""
        done: list[str] = []
        waiting = list(self.arms)
        while waiting:  # the listing order, each arm as early as its source allows
            ready = next((n for n in waiting if self.arms[n].init_from in (None, *done)), None)
            if ready is None:
                raise ValueError(f"study.arms: init_from forms a cycle among {waiting}")
            done.append(ready)
            waiting.remove(ready)
        return done

    def primary(self) -> tuple[str, str]:
        """(a, b): the pre-named comparison a - b on ``primary_suite``."""
        if self.primary_comparison is not None:
            return self.primary_comparison
        return ("rpo", "dpo") if {"rpo", "dpo"} <= set(self.arms) else (next(iter(self.arms)), "base")
