"""The root ``Params`` (one section per ``params.yaml`` section), loading, overrides and recipes.

Each section is defined beside the verb it configures (``reverso/train/config.py``, ``collect/config.py``,
``evaluate/config.py``, ``generation/config.py`` for the engines, ``study/config.py``, ``improve/config.py``,
``pairs/config.py``, ``inspect/config.py``; the one-module verbs ``prepare_model.py``, ``reverse.py``,
``registry.py`` and ``promote.py`` at their top), with its defaults, which params.yaml repeats field by
field (tests/test_defaults.py). Validation happens once, at load, and errors name the file, the field and
the allowed values. Stages receive their own section only, so ``dvc.yaml`` declares which params each reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from reverso.collect.config import CollectParams, SamplerParams
from reverso.config_base import ConfigError, _Section
from reverso.evaluate.config import BootstrapParams, EvaluateJudge, EvaluateParams, OfficialFiles, SuiteSizes
from reverso.generation.config import OpenVINOParams, SamplingOpenVINOParams, ServerFields, VLLMParams
from reverso.improve.config import ImproveParams
from reverso.inspect.config import InspectParams
from reverso.pairs.config import PairsParams
from reverso.prepare_model import ModelParams, RandomInitConfig
from reverso.promote import PromoteParams
from reverso.registry import RegistryParams
from reverso.reverse import ReverseParams
from reverso.study.config import StudyParams
from reverso.train.config import ArmSpec, LoraParams, LossTerm, TrainParams, with_arm

__all__ = ["ArmSpec", "BootstrapParams", "CollectParams", "ConfigError", "EvaluateJudge", "EvaluateParams",
           "ImproveParams", "InspectParams", "LoraParams", "LossTerm", "ModelParams", "OfficialFiles",
           "OpenVINOParams", "PairsParams", "Params", "PromoteParams", "RandomInitConfig", "RegistryParams",
           "ReverseParams", "SamplerParams", "SamplingOpenVINOParams", "ServerFields", "StudyParams", "SuiteSizes",
           "TrainParams", "VLLMParams", "load_params", "parse_override", "recipe_overrides", "with_arm"]


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
