"""Two-process CPU DDP (gloo) on a tiny model: both ranks must end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.pairs import write_pairs


@pytest.mark.slow
def test_two_process_cpu_ddp_ranks_agree(tiny_model_dir: Path, tmp_path: Path) -> None:
    write_pairs(tmp_path)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "ACCELERATE_USE_CPU": "true"}
    command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
               "-m", "reverso.cli", "train", "--model", str(tiny_model_dir), "-S", "train.max_steps=3",
               "-S", "train.batch_size=1", "-S", "train.max_length=64", "-S", "pairs.max_length=64"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics/train.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["ranks_agree"] and len(set(metrics["rank_weight_digests"])) == 1
    assert (tmp_path / "models/policy/adapter_model.safetensors").exists()


@pytest.mark.slow
def test_rerun_with_new_beta_reuses_reference_log_probs(tiny_model_dir: Path, tmp_path: Path) -> None:
    write_pairs(tmp_path)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    outputs = []
    for beta in ("0.1", "0.3"):
        command = [str(Path(sys.executable).parent / "reverso"), "train", "--model", str(tiny_model_dir),
                   "-S", "train.max_steps=2", "-S", "train.batch_size=1", "-S", f"train.beta={beta}"]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout)
    assert "reused ref-logps-" not in outputs[0] and "reused ref-logps-" in outputs[1]


@pytest.mark.slow
def test_study_item_under_a_two_process_launcher_has_one_writer(tiny_model_dir: Path, tmp_path: Path) -> None:
    """What study.train_launcher runs per item, with 2 ranks: one MLflow parent run, rank 0's metrics on disk."""
    import mlflow

    write_pairs(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ACCELERATE_USE_CPU": "true"}
    command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
               "-m", "reverso.cli", "study", "train-arm", "--arm", "rpo", "--seed", "1", "--model", str(tiny_model_dir),
               "--pairs-dir", "data/pairs",
               "-S", "train.max_steps=2", "-S", "train.batch_size=1", "-S", "train.max_length=64",
               "-S", "pairs.max_length=64"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("study rpo-1: 2 steps") == 1  # rank 0 alone reports
    item = json.loads((tmp_path / "reports/study/train/rpo-1.json").read_text())
    assert item["steps"] == 2 and item["world_size"] == 2 and item["ranks_agree"] and item["arm"] == "rpo"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert [r.data.tags.get("reverso.stage") for r in runs].count("study") == 1  # one parent, not one per rank
    assert (tmp_path / "models/study/rpo-1/adapter_model.safetensors").exists()
