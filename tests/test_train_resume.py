"""Kill -9 a training run mid-way; the next `reverso train` resumes and ends on the same step count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.pairs import write_pairs


@pytest.mark.slow
def test_killed_training_resumes_from_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    write_pairs(tmp_path)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    command = [str(Path(sys.executable).parent / "reverso"), "train", "--model", str(tiny_model_dir),
               "-S", "train.max_steps=60", "-S", "train.save_steps=5", "-S", "train.batch_size=1",
               "-S", "train.pairs_per_step=1",
               "-S", "train.max_length=64", "-S", "pairs.max_length=64"]
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / ".reverso/checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        found = list(checkpoints.glob("*/checkpoint-*/trainer_state.json"))
        if any(int(p.parent.name.split("-")[1]) >= 10 for p in found):
            break
        time.sleep(0.05)
    assert first.poll() is None, "training finished before it could be killed; raise max_steps"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (tmp_path / "models/policy").exists()  # no partial output looks like a finished model

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming training from" in second.stdout
    metrics = json.loads((tmp_path / "metrics/train.json").read_text())
    assert metrics["steps"] == 60 and metrics["resumed_from"].startswith("checkpoint-")
    assert (tmp_path / "models/policy/adapter_model.safetensors").exists()
    assert not list(checkpoints.glob("*/checkpoint-*"))  # cleaned up after success
    assert not list((tmp_path / "models").glob(".policy.*"))
