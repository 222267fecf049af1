"""One source of defaults: params.yaml lists every field a user can set, with the code's default, and
each stage's DVC deps include the modules that define the params sections it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from reverso.config import Params, load_params

REPO = Path(__file__).resolve().parents[1]
# Set by train.arm (a built-in arm fills them in): listing them would make `-S train.arm=dpo` a clash.
DERIVED = {"train.builder", "train.loss", "train.margin_mode"}
# Where each params section is defined (a folder: its config.py; sections that nest generation/config.py's
# server fields depend on that too).
SECTION_MODULES = {
    "model": ["src/reverso/prepare_model.py"],
    "collect": ["src/reverso/collect/config.py", "src/reverso/generation/config.py"],
    "reverse": ["src/reverso/reverse.py"],
    "pairs": ["src/reverso/pairs/config.py"],
    "train": ["src/reverso/train/config.py"],
    "evaluate": ["src/reverso/evaluate/config.py", "src/reverso/generation/config.py"],
    "registry": ["src/reverso/registry.py"],
    "promote": ["src/reverso/promote.py"],
    "inspect": ["src/reverso/inspect/config.py"],
    "study": ["src/reverso/study/config.py"],
    "improve": ["src/reverso/improve/config.py"],
}


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            paths += _field_paths(type(default), f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _lookup(tree: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict) and not prefix.endswith("arms."):
        return [d for key in sorted(set(a) | set(b)) for d in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [f"{prefix.rstrip('.')}: code {a!r}, params.yaml {b!r}"]


def test_params_yaml_lists_every_field() -> None:
    tree = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    missing = [path for path in _field_paths(Params) if path not in DERIVED and not _lookup(tree, path)]
    assert not missing, f"params.yaml does not list {missing}: add each with the code's default and a comment"


def test_code_defaults_equal_params_yaml() -> None:
    code, repo = Params().model_dump(), load_params(REPO / "params.yaml").model_dump()
    assert not _differences(code, repo), "\n".join(_differences(code, repo))


@pytest.mark.parametrize("pipeline", ["dvc.yaml", "study/dvc.yaml", "improve/dvc.yaml"])
def test_each_stage_depends_on_the_config_it_reads(pipeline: str) -> None:
    stages = yaml.safe_load((REPO / pipeline).read_text(encoding="utf-8"))["stages"]
    gaps = []
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        deps = [str(dep) for dep in stage.get("deps", [])]
        for param in stage.get("params", []):
            section = str(param).split(".")[0]
            for module in SECTION_MODULES[section]:
                if not any(module == dep or module.startswith(dep.rstrip("/") + "/") for dep in deps):
                    gaps.append(f"{name} reads {param} but does not depend on {module}")
    assert not gaps, "\n".join(gaps)
