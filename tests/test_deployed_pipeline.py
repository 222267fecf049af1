"""The whole pipeline as a team deploys it, run once and read by every test here: a process worker executes
prefect.yaml's manual deployment on the tiny random-init Llama, against a real Prefect server, a real MLflow
tracking server whose artefacts live in S3-compatible storage on loopback, and DVC (later with an S3 remote).

The tests run in file order on one workspace: the triggered run and its outputs, the CLI rerunning nothing,
the registry's artefacts, the DVC remote, the deployments, a scheduled run, experiments and comparison,
and last the search for the S3 secret in everything that was written."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reverso.contracts import Pair, Response, Session, Verdict
from reverso.io import read_rows
from reverso.pairs.validate import reverify

from support.servers import BIN
from support.stack import FINAL, KEY_ID, Stack, cached_outs, deployment_stack, interval_deployment
from support.workspace import OVERRIDES

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PREFECT, DVC, REVERSO = str(BIN / "prefect"), str(BIN / "dvc"), str(BIN / "reverso")
MANUAL: dict = {}  # the triggered flow run, as the server reports it


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with deployment_stack(tmp_path_factory.mktemp("deployed")) as stack:
        # Triggered as a person or CI does, parameters as a person would pass them.
        started = stack.run([PREFECT, "deployment", "run", "reverso-pipeline/reverso-manual",
                             "--params", json.dumps({"overrides": OVERRIDES})])
        run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", started).group(1)
        MANUAL.update(stack.wait_final(run_id, 900))
        yield stack


def test_a_worker_runs_the_triggered_deployment_against_the_servers(deployed: Stack) -> None:
    ws = deployed.workspace
    assert MANUAL["state_type"] == "COMPLETED", (MANUAL["state"], deployed.worker_log.read_text()[-4000:])
    assert not MANUAL["auto_scheduled"]
    recorded = json.loads((ws / ".reverso/flow-run.json").read_text())
    assert recorded["id"] == MANUAL["id"] and recorded["api_url"] == deployed.api  # the worker's run drove the stages
    for out in ("data/sessions.jsonl", "data/pairs/rpo/train.jsonl", "models/policy/adapter_model.safetensors",
                "metrics/eval.json", "metrics/promotion.json", "reports/index.html",
                "plots/train_curves.png", "plots/eval_per_constraint.png", "reports/validation/data_docs/index.html"):
        assert (ws / out).is_file(), out
    assert "up to date" in (status := deployed.run([DVC, "status", "dvc.yaml"])), status  # study/ is separate
    flows = deployed.post("/flows/filter", {"flows": {"name": {"any_": ["reverso-pipeline"]}}})
    runs = deployed.post("/flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
    assert [r["state_type"] for r in runs] == ["COMPLETED"]

    from mlflow import MlflowClient

    assert not (ws / "mlflow.db").exists()  # everything went to the tracking server
    client = MlflowClient(tracking_uri=deployed.mlflow_uri, registry_uri=deployed.mlflow_uri)
    version = client.get_model_version_by_alias("reverso-policy", "challenger")
    assert version.tags["pairs_md5"] and "eval.policy.multi_if.average" in version.tags
    assert client.get_run(version.run_id).info.status == "FINISHED"


def test_the_outputs_hold_their_contracts(deployed: Stack) -> None:
    ws = deployed.workspace
    sessions = read_rows(ws / "data/sessions.jsonl", Session)
    responses = read_rows(ws / "data/responses.jsonl", Response)
    verdicts = read_rows(ws / "data/verdicts.jsonl", Verdict)
    assert len(sessions.rows) == 10 and not sessions.quarantined
    assert len(responses.rows) == 10 * 2 * 4 and not responses.quarantined
    assert not verdicts.quarantined and len(verdicts.rows) > 0
    pairs = []
    for split in ("train", "eval"):
        result = read_rows(ws / f"data/pairs/rpo/{split}.jsonl", Pair)
        assert not result.quarantined
        pairs += result.rows
    assert pairs, "the tiny run produced no RPO pairs"
    for pair in pairs:
        chosen_fails, rejected_fails = reverify(pair)
        assert chosen_fails == [] and len(rejected_fails) == pair.margin

    from safetensors.torch import load_file

    adapter = load_file(ws / "models/policy/adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # LoRA B starts at zero: training moved it
    trained = json.loads((ws / "metrics/train.json").read_text())
    if trained["eval_pairs"]:  # held-out margins before (policy == reference) and after training
        assert trained["held_out"]["before"]["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
        assert trained["held_out"]["after"]["rewards/margins"] != trained["held_out"]["before"]["rewards/margins"]

    from datasets import load_dataset  # TRL-ready: the pair files load with datasets as they are

    loaded = load_dataset("json", data_files=str(ws / "data/pairs/rpo/train.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected", "margin"} <= set(loaded.column_names)


def test_the_cli_on_the_same_params_reruns_nothing_and_summarises(deployed: Stack) -> None:
    output = deployed.run([REVERSO, "pipeline", *sum((["-S", o] for o in OVERRIDES), [])])
    assert "reverso pipeline summary" in output and "@challenger" in output
    assert "Running stage" not in output, output[-3000:]
    assert "Running stage" not in (again := deployed.run([DVC, "repro"])), again


def test_the_registered_model_comes_back_from_s3_and_answers(deployed: Stack) -> None:
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    keys = deployed.bucket_keys("reverso-mlflow")
    assert any(k.startswith("artifacts/") and k.endswith("adapter_model.safetensors") for k in keys), keys
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(deployed.mlflow_uri)  # a models:/ URI resolves on this server
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/reverso-policy@challenger",
                                                         dst_path=str(deployed.root / "download")))
        policy = mlflow.pyfunc.load_model("models:/reverso-policy@challenger")  # reloads with its base
    finally:
        mlflow.set_tracking_uri(previous)
    downloaded = list(local.rglob("adapter_model.safetensors"))
    assert downloaded and downloaded[0].read_bytes() == \
        (deployed.workspace / "models/policy/adapter_model.safetensors").read_bytes()
    conversations = pd.DataFrame({"messages": [[{"role": "user", "content": "Say hi."}],
                                               [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                                                {"role": "user", "content": "Count to three."}]]})
    answers = policy.predict(conversations, params={"max_new_tokens": 4})
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_the_dvc_remote_round_trips_through_s3(deployed: Stack) -> None:
    ws, clone = deployed.workspace, deployed.root / "clone"
    # endpoint in the committed config, credentials only in the environment
    deployed.run([DVC, "remote", "add", "-d", "storage", "s3://reverso-dvc/cache"])
    deployed.run([DVC, "remote", "modify", "storage", "endpointurl", deployed.endpoint])
    config = (ws / ".dvc/config").read_text()
    assert "s3://reverso-dvc/cache" in config and deployed.secret not in config and KEY_ID not in config
    deployed.run(["git", "add", "-A"])
    deployed.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "--allow-empty", "-qm", "reference"])
    deployed.run([DVC, "push", "dvc.yaml"])
    assert any(key.startswith("cache/files/md5/") for key in deployed.bucket_keys("reverso-dvc"))

    deployed.run(["git", "clone", "-q", str(ws), str(clone)], cwd=deployed.root)
    assert not (clone / "models/policy").exists()  # outputs are not in git
    deployed.run([DVC, "pull", "dvc.yaml"], cwd=clone)  # study/ has its own
    files = cached_outs(ws)
    assert ws / "models/policy/adapter_model.safetensors" in files
    for path in files:
        assert (clone / path.relative_to(ws)).read_bytes() == path.read_bytes(), f"{path.relative_to(ws)} differs"
    assert "in sync" in (status := deployed.run([DVC, "status", "--cloud", "dvc.yaml"], cwd=clone)), status


def test_prefect_yaml_deployments_register_on_the_server(deployed: Stack) -> None:
    deployed.run([PREFECT, "--no-prompt", "deploy", "--all"])
    deployments = deployed.post("/deployments/filter", {})
    assert {d["name"] for d in deployments} >= {"reverso-nightly", "reverso-weekly-champion", "reverso-manual",
                                                "reverso-study"}
    nightly = next(d for d in deployments if d["name"] == "reverso-nightly")
    assert nightly["schedules"] and nightly["work_pool_name"] == "reverso-process"


def test_a_scheduled_run_on_the_worker_reruns_nothing(deployed: Stack) -> None:
    """The nightly deployment on a short interval, the way a team's cron drives the pipeline."""
    ws = deployed.workspace
    lock_before = (ws / "dvc.lock").read_bytes()
    name = interval_deployment(ws, deployed.root / "prefect-interval.yaml", seconds=5)
    deployed.run([PREFECT, "--no-prompt", "deploy", "--prefect-file", str(deployed.root / "prefect-interval.yaml"),
                  "--name", name])
    deployment = deployed.get(f"/deployments/name/reverso-pipeline/{name}")
    deadline, scheduled = time.monotonic() + 300, None
    while scheduled is None and time.monotonic() < deadline:
        runs = deployed.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
        scheduled = next((r for r in runs if r["state_type"] in FINAL), None)
        time.sleep(2)
    server_log = deployed.server_log.read_text()
    hint = " (Prefect 3.8's scheduler fails on SQLAlchemy 2.1: pin SQLAlchemy<2.1)" if "bulk_dml" in server_log else ""
    errors = [line for line in server_log.splitlines() if "Error" in line]
    assert scheduled is not None, f"no scheduled run finished{hint}; server errors: {errors[-5:]}"
    deployed.run([PREFECT, "deployment", "schedule", "clear", f"reverso-pipeline/{name}", "--accept-yes"])
    assert scheduled["state_type"] == "COMPLETED", (scheduled["state"], deployed.worker_log.read_text()[-4000:])
    assert scheduled["auto_scheduled"] and scheduled["parameters"]["on_busy"] == "fail"
    logs = deployed.run_logs(scheduled["id"])
    assert "[train]" in logs and "didn't change, skipping" in logs, logs[-3000:]
    assert (ws / "dvc.lock").read_bytes() == lock_before
    # Runs the schedule had queued before it was cleared: the due ones run (each rewrites flow-run.json, which
    # names one of this deployment's scheduled runs), the rest are deleted so that no late run overlaps the
    # experiments below.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        queued = deployed.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
        for waiting in (r for r in queued if r["state_type"] == "SCHEDULED"):
            deployed.delete(f"/flow_runs/{waiting['id']}")  # one the server was too busy to delete: next loop
        if all(r["state_type"] in FINAL for r in queued):
            break
        time.sleep(2)
    recorded = json.loads((ws / ".reverso/flow-run.json").read_text())["id"]
    assert recorded in {r["id"] for r in queued if r["auto_scheduled"]}, (recorded, queued)


def test_experiments_rerun_only_what_changed_and_versions_compare(deployed: Stack, tmp_path: Path) -> None:
    deployed.run(["git", "add", "-A"])
    deployed.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "--allow-empty", "-qm", "run"])
    experiment = deployed.run([DVC, "exp", "run", "-S", "train.beta=0.2"])
    assert "Running stage 'train'" in experiment and "Running stage 'collect'" not in experiment
    shown = deployed.run([DVC, "exp", "show", "--no-pager", "--csv"])
    assert "train.beta" in shown and "0.2" in shown
    plots = deployed.run([DVC, "plots", "show", "-o", str(tmp_path / "plots")])
    assert (tmp_path / "plots" / "index.html").exists(), plots

    # Comparison mode: the two registered versions side by side with the base.
    compare = ["-S", "evaluate.suites.ifeval=2", "-S", "evaluate.suites.multi_if=1", "-S", "evaluate.suites.sysbench=0",
               "-S", "evaluate.max_new_tokens=8"]
    deployed.run([REVERSO, "evaluate", "--compare", "1", "--compare", "2", *compare])
    report = (deployed.workspace / "reports/compare/compare.md").read_text()
    assert "v1 (rpo)" in report and "v2 (rpo)" in report and "base" in report


def test_the_s3_secret_is_in_nothing_written_or_logged(deployed: Stack) -> None:
    from mlflow import MlflowClient

    secret = deployed.secret
    client = MlflowClient(tracking_uri=deployed.mlflow_uri, registry_uri=deployed.mlflow_uri)
    for version in client.search_model_versions("name='reverso-policy'"):
        run_data = client.get_run(version.run_id).data
        tracked = [*run_data.params.values(), *run_data.tags.values(), *version.tags.values()]
        assert not [v for v in tracked if secret in v or KEY_ID in v], version.version
    haystacks = [o.encode() for o in deployed.outputs]
    haystacks += [p.read_bytes() for folder in ("ws", "clone", "download") for p in (deployed.root / folder).rglob("*")
                  if p.is_file()]
    haystacks += [(deployed.root / name).read_bytes() for name in ("server.db", "mlflow.log")]
    assert not [h for h in haystacks if secret.encode() in h], "the S3 secret leaked into a written file"
