"""A copy of the repo to run the real pipeline in: the end-to-end, study, improve and server tests share it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "model.source=random-init", "collect.sessions=10", "collect.turns=2", "collect.system_constraints=6",
    "collect.samples_per_turn=4", "collect.sampler.max_new_tokens=24", "reverse.max_quarantine_fraction=0.5",
    # a random-init model rarely stops before the cap: let its cut-off replies form pairs here
    "pairs.g_min=1", "pairs.allow_truncated=true", "pairs.max_length=256", "train.max_length=256", "train.max_steps=3",
    "evaluate.suites.ifeval=3", "evaluate.suites.multi_if=2", "evaluate.suites.sysbench=1",
    "evaluate.sysbench_turns=2", "evaluate.max_new_tokens=16",
]
# the study end to end on the tiny model: tests/test_study.py, tests/test_search.py
STUDY_SMOKE = [
    "model.source=random-init", "collect.sessions=24", "collect.turns=2", "collect.system_constraints=6",
    "collect.samples_per_turn=5", "collect.sampler.max_new_tokens=24", "reverse.max_quarantine_fraction=0.5",
    "pairs.g_min=1", "pairs.allow_truncated=true", "pairs.max_length=256", "train.max_length=256",
    "train.max_steps=2",
    "evaluate.suites.ifeval=3", "evaluate.suites.multi_if=2", "evaluate.suites.sysbench=1",
    "evaluate.sysbench_turns=2", "evaluate.max_new_tokens=8",
    "study.arms=[dpo, rpo]", "study.seeds=[1, 2]", "study.bootstrap=100",
]


def copy_repo(target: Path) -> None:
    """The repo's tracked and untracked-not-ignored files (no outputs) in ``target``, committed as one git commit."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        source = REPO / name
        if source.is_file() and not name.startswith(("models/", "metrics/", "plots/", "reports/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=target, check=True)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``command``; fail the test with the tail of its output unless it exits 0; return stdout + stderr."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def copied_workspace(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A copy of the repo (no outputs), the environment of an activated venv, and the venv's bin folder."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    copy_repo(workspace)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # as with an activated venv
    return workspace, env, bin_dir
