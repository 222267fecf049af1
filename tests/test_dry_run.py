"""`reverso study --recipe FILE --dry-run`: every shipped recipe resolves on this CPU machine; a recipe
that contradicts itself fails with a message naming the file and the field. Nothing trains."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from reverso.cli import app

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted([*(REPO / "configs/study").glob("*.yaml"), *(REPO / "configs/eval").glob("*.yaml")])
runner = CliRunner()


def _dry_run(workspace: Path, recipe: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["study", "--recipe", str(recipe), "--workspace", str(workspace), "--dry-run", *extra])
    return result.exit_code, result.output


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_resolves(recipe: Path) -> None:
    code, out = _dry_run(REPO, recipe.relative_to(REPO))
    assert code == 0, out
    assert "consistent" in out and "error:" not in out
    assert "train-arm" in out  # the launcher's command line, as an argument list


def test_paper_recipe_says_what_the_gpu_box_needs() -> None:
    """The CI form of the issue's check, as a user runs it: the installed entry point, in a subprocess."""
    out = subprocess.run([sys.executable, "-m", "reverso.cli", "study", "--recipe", "configs/study/paper-8b.yaml",
                          "--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "['accelerate', 'launch', '--config_file', 'configs/accelerate/deepspeed_zero3.yaml', '-m', 'reverso.cli'," \
           " 'study', 'train-arm', '--arm'," in text
    assert "(DEEPSPEED ZeRO-3), 8 process(es), mixed precision bf16" in text
    assert "accumulation 8 -> 128 pairs per optimizer step" in text
    assert "per session none" in text and "penalty 0.0/0.0" in text
    assert "evaluate: vllm, suites {'ifeval': 400, 'multi_if': 400, 'sysbench': 300" in text
    assert "CUDA GPU" in text and "CUDA 13.0" in text
    for module in ("vllm", "deepspeed"):  # named with where it comes from, whether or not installed here
        assert f"needs {module}: pip install -r requirements-gpu.lock" in text or f"{module} installed" in text


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "configs/accelerate").mkdir(parents=True)
    for name in ("deepspeed_zero3.yaml", "single_gpu.yaml"):
        shutil.copy(REPO / "configs/accelerate" / name, tmp_path / "configs/accelerate" / name)
    shutil.copy(REPO / "configs/study/paper-8b.yaml", tmp_path / "recipe.yaml")
    return tmp_path


def _edit(path: Path, change) -> None:
    tree = yaml.safe_load(path.read_text())
    change(tree)
    path.write_text(yaml.safe_dump(tree))


def test_the_copied_recipe_is_consistent(workspace: Path) -> None:
    code, out = _dry_run(workspace, workspace / "recipe.yaml")
    assert code == 0, out


def test_deepspeed_accumulation_disagreeing_with_params_fails(workspace: Path) -> None:
    _edit(workspace / "configs/accelerate/deepspeed_zero3.yaml",
          lambda t: t["deepspeed_config"].update(gradient_accumulation_steps=1))
    code, out = _dry_run(workspace, workspace / "recipe.yaml")
    assert code == 1
    assert "INCONSISTENT" in out
    assert ("configs/accelerate/deepspeed_zero3.yaml: deepspeed_config.gradient_accumulation_steps is 1, but params "
            "give 8 micro-batches per step") in out
    # the value params derive is accepted, so is auto (the shipped config)
    _edit(workspace / "configs/accelerate/deepspeed_zero3.yaml",
          lambda t: t["deepspeed_config"].update(gradient_accumulation_steps=8))
    assert _dry_run(workspace, workspace / "recipe.yaml")[0] == 0
    # 4 GPUs instead of 8: the derived accumulation doubles and the fixed 8 is wrong again
    code, out = _dry_run(workspace, workspace / "recipe.yaml", "-S",
                         "study.train_launcher=accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml "
                         "--num_processes 4 -m reverso.cli")
    assert code == 1 and "params give 16 micro-batches" in out


def test_unknown_key_in_the_recipe_names_the_recipe_and_the_field(workspace: Path) -> None:
    _edit(workspace / "recipe.yaml", lambda t: t["train"].update(pairs_per_stepp=64))
    code, out = _dry_run(workspace, workspace / "recipe.yaml")
    assert code == 1
    assert f"error: {workspace / 'recipe.yaml'}: train.pairs_per_stepp: Extra inputs are not permitted" in out


def test_mixed_precision_must_match_train_bf16(workspace: Path) -> None:
    _edit(workspace / "recipe.yaml", lambda t: t["train"].update(bf16=False))
    code, out = _dry_run(workspace, workspace / "recipe.yaml")
    assert code == 1
    assert "configs/accelerate/deepspeed_zero3.yaml: mixed_precision is bf16 but train.bf16 is false" in out


def test_a_launcher_that_does_not_run_reverso_fails(workspace: Path) -> None:
    code, out = _dry_run(workspace, workspace / "recipe.yaml", "-S",
                         "study.train_launcher=accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml "
                         "train.py")
    assert code == 1 and "must run the module reverso.cli" in out
    code, out = _dry_run(workspace, workspace / "recipe.yaml", "-S",
                         "study.train_launcher=accelerate launch --config_file configs/accelerate/missing.yaml "
                         "-m reverso.cli")
    assert code == 1 and "missing.yaml does not exist" in out


def test_openai_sampler_without_a_server_fails(workspace: Path) -> None:
    _edit(workspace / "recipe.yaml", lambda t: t["collect"]["sampler"].update(backend="openai"))
    code, out = _dry_run(workspace, workspace / "recipe.yaml")
    assert code == 1
    assert "collect.sampler" in out and "backend openai needs base_url and model_name" in out  # refused at load


def test_dry_run_writes_nothing(workspace: Path) -> None:
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    assert _dry_run(workspace, workspace / "recipe.yaml")[0] == 0
    after = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("config", sorted((REPO / "configs/accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_every_accelerate_config_fits_the_paper_recipe(config: Path) -> None:
    launcher = f"accelerate launch --config_file {config.relative_to(REPO)} -m reverso.cli"
    code, out = _dry_run(REPO, Path("configs/study/paper-8b.yaml"), "-S", f"study.train_launcher={launcher}")
    assert code == 0, out
    processes = yaml.safe_load(config.read_text())["num_processes"]
    accumulation = -(-128 // (2 * processes))
    assert f"{processes} process(es), mixed precision bf16" in out
    assert f"accumulation {accumulation} -> {2 * processes * accumulation} pairs per optimizer step" in out
