"""The self-improving loop end to end (configs/improve/smoke.yaml: tiny random-init model, 2 rounds), in a copy
of the repo: a kill between stages resumes, lineage lands in MLflow and DVC, a losing round keeps @champion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.workspace import copied_workspace, run

SMOKE = "configs/improve/smoke.yaml"
LOSE_ROUND_2 = "improve.min_delta={2: 5.0}"  # a paired difference of a [0, 1] metric never clears 5: a sure loss


def seed_champion(workspace: Path) -> str:
    """Register a real (slightly moved) LoRA adapter on the workspace's base model as @champion."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from reverso import registry as reg
    from reverso.train.mlflow_model import log_policy

    base = workspace / "models/base"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.02)
    adapter = workspace / "seed-adapter"
    model.save_pretrained(str(adapter))
    reg.setup("reverso", workspace)
    import mlflow

    with mlflow.start_run(run_name="seed-champion") as started:
        logged = log_policy(str(adapter), str(base.resolve()))
    version = reg.register_version("reverso-policy", started.info.run_id, logged.model_uri, tags={"seed": "true"},
                                   model_id=logged.model_id)
    reg.set_alias("reverso-policy", reg.CHAMPION, version)
    return version


def kill_after(command: list[str], workspace: Path, env: dict[str, str], item: str, timeout: float = 600) -> None:
    """Start ``command`` and SIGKILL its whole process group once DVC has recorded ``item`` as finished."""
    lock = workspace / "improve/dvc.lock"
    process = subprocess.Popen(command, cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if lock.exists() and f"{item}:" in lock.read_text():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.5)
        raise AssertionError(f"{item} never finished (exit {process.poll()})")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_improve_smoke_resume_lineage_and_losing_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, env, bin_dir = copied_workspace(tmp_path)
    from reverso.config import recipe_overrides
    from reverso.orchestration import apply_overrides

    apply_overrides(workspace, [*recipe_overrides(workspace / SMOKE), LOSE_ROUND_2])
    run([str(bin_dir / "dvc"), "repro", "prepare-model"], workspace, env)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(workspace / 'mlflow.db').resolve()}")
    seeded = seed_champion(workspace)

    command = [str(bin_dir / "reverso"), "improve"]
    kill_after(command, workspace, env, "improve-pairs@1")  # killed in round 1, between pairs and train
    assert not (workspace / "improve/round-1/decision.json").exists()
    output = run(command, workspace, env)

    # resumed where it stopped: round 1's finished items were skipped, the rest ran
    for item in ("champion", "collect", "reverse", "pairs"):
        assert f"improve-{item}@1: skipped" in output, output[-3000:]
    for item in ("train@1", "promote@1", "champion@2", "collect@2", "train@2", "promote@2", "final"):
        assert f"improve-{item}: ran" in output, output[-3000:]

    read = lambda path: json.loads((workspace / path).read_text())  # noqa: E731
    first, second = read("improve/round-1/decision.json"), read("improve/round-2/decision.json")
    assert read("improve/round-1/champion/champion.json")["version"] == seeded
    assert first["champion_before"] == seeded
    # round 2 starts from round 1's outcome; its challenger loses (min_delta 5) and @champion stays put
    assert read("improve/round-2/champion/champion.json")["version"] == first["champion_after"]
    assert second["decision"] == "rejected" and "min_delta 5.0" in second["reason"]
    assert second["champion_after"] == second["champion_before"] == first["champion_after"]
    sampled = [json.loads(line)["model"] for line in (workspace / "improve/round-2/data/responses.jsonl").open()]
    assert sampled and all("round-2/champion/adapter" in model for model in sampled)  # sampled with the champion

    from mlflow import MlflowClient

    from reverso import registry as reg

    reg.setup("reverso", workspace)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("reverso-policy", "champion").version) == first["champion_after"]
    for decision, parent in ((first, seeded), (second, first["champion_after"])):
        tags = client.get_model_version("reverso-policy", decision["challenger_version"]).tags
        assert tags["improve.round"] == str(decision["round"]) and tags["improve.parent_version"] == parent
        assert len(tags["improve.data_digest"]) == 32 and int(tags["improve.pairs_train"]) > 0
        assert tags["improve.decision"] == decision["decision"] and tags["improve.reference"] == "champion"
        assert "eval.evidence" in tags and json.loads(tags["eval.evidence"])["champion_version"] == parent

    # the curve, the final test comparison, the parent run
    report = read("metrics/improve.json")
    assert [r["round"] for r in report["rounds"]] == [1, 2] and report["champion"] == first["champion_after"]
    assert report["rounds"][1]["validation"]["vs_champion"]["ci_low"] is not None
    assert report["final_test"]["champion_version"] == first["champion_after"]
    assert report["final_test"]["vs_base"]["n"] > 0
    assert (workspace / "plots/improve_curve.png").stat().st_size > 1000
    history = client.get_metric_history(report["parent_run_id"], "validation.challenger.mean")
    assert sorted(m.step for m in history) == [1, 2]
    children = client.search_runs([client.get_run(report["parent_run_id"]).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{report['parent_run_id']}'")
    assert {r.info.run_name for r in children} >= {"improve-round-1", "improve-round-2"}

    # every round is a reproducible unit: nothing is stale, and a rerun runs nothing
    status = run([str(bin_dir / "dvc"), "status", "improve/dvc.yaml"], workspace, env)
    assert "up to date" in status, status
