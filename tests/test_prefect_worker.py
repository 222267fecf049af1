"""Prefect for real: a Prefect server and a process worker on loopback execute prefect.yaml's deployments,
one triggered the way a person or CI does (`prefect deployment run`) and one started by its schedule, the
way a team's cron drives the pipeline."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from support.servers import BIN, free_port, post, server
from support.workspace import OVERRIDES, copy_repo, run

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_final(api: str, run_id: str, timeout: float, worker_log: Path) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow_run = get(f"{api}/flow_runs/{run_id}")
        if flow_run["state_type"] in FINAL:
            return flow_run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} not finished after {timeout}s; worker log:\n"
                         f"{worker_log.read_text()[-4000:]}")


def run_logs(api: str, run_id: str) -> str:
    rows = post(f"{api}/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    return "\n".join(row["message"] for row in rows)


def interval_deployment(workspace: Path, target: Path, seconds: int) -> str:
    """prefect.yaml's nightly deployment as it is, but on a short interval instead of its cron."""
    project = yaml.safe_load((workspace / "prefect.yaml").read_text())
    nightly = next(d for d in project["deployments"] if d["name"] == "reverso-nightly")
    project["deployments"] = [{**nightly, "name": "reverso-interval", "schedules": [{"interval": seconds}]}]
    target.write_text(yaml.safe_dump(project, sort_keys=False))
    return "reverso-interval"


@pytest.mark.slow
@pytest.mark.integration
def test_worker_executes_a_triggered_and_a_scheduled_deployment(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    copy_repo(workspace)
    port, worker_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false", DO_NOT_TRACK="1",
               # schedule one run at a time and look for due schedules every 2 s (defaults: 3-100 runs, 60 s)
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2", PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS="1",
               PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="1")
    client_env = {**env, "PREFECT_API_URL": api, "REVERSO_WORKSPACE": str(workspace),
                  "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}",
                  "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                  "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port)}
    prefect = str(BIN / "prefect")
    server_cmd = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    worker_cmd = [prefect, "worker", "start", "--pool", "reverso-process", "--type", "process", "--with-healthcheck"]
    worker_log = tmp_path / "worker.log"
    with server(server_cmd, f"{api}/health", env, tmp_path / "prefect.log"):
        run([prefect, "work-pool", "create", "reverso-process", "--type", "process"], workspace, client_env)
        run([prefect, "--no-prompt", "deploy", "--name", "reverso-manual"], workspace, client_env)
        with server(worker_cmd, f"http://127.0.0.1:{worker_port}/health", client_env, worker_log):
            # 1. Triggered: the whole pipeline on the tiny model, parameters as a person would pass them.
            started = run([prefect, "deployment", "run", "reverso-pipeline/reverso-manual",
                           "--params", json.dumps({"overrides": OVERRIDES})], workspace, client_env)
            run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", started).group(1)
            manual = wait_final(api, run_id, 900, worker_log)
            assert manual["state_type"] == "COMPLETED", (manual["state"], worker_log.read_text()[-4000:])
            assert not manual["auto_scheduled"]
            recorded = json.loads((workspace / ".reverso/flow-run.json").read_text())
            assert recorded["id"] == run_id and recorded["api_url"] == api  # the worker's run drove the stages
            for out in ("data/sessions.jsonl", "data/pairs/rpo/train.jsonl", "models/policy/adapter_model.safetensors",
                        "metrics/eval.json", "metrics/promotion.json", "reports/index.html"):
                assert (workspace / out).is_file(), out
            status = run([str(BIN / "dvc"), "status", "dvc.yaml"], workspace, client_env)
            assert "up to date" in status, status
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=client_env["MLFLOW_TRACKING_URI"])
            version = client.get_model_version_by_alias("reverso-policy", "challenger")
            assert version.tags["pairs_md5"] and "eval.policy.multi_if.average" in version.tags
            assert client.get_run(version.run_id).info.status == "FINISHED"

            # 2. Scheduled: the nightly deployment on a short interval; nothing changed, so DVC reruns nothing.
            lock_before = (workspace / "dvc.lock").read_bytes()
            name = interval_deployment(workspace, tmp_path / "prefect-interval.yaml", seconds=5)
            run([prefect, "--no-prompt", "deploy", "--prefect-file", str(tmp_path / "prefect-interval.yaml"),
                 "--name", name], workspace, client_env)
            deployment = get(f"{api}/deployments/name/reverso-pipeline/{name}")
            deadline, scheduled = time.monotonic() + 300, None
            while scheduled is None and time.monotonic() < deadline:
                runs = post(f"{api}/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
                scheduled = next((r for r in runs if r["state_type"] in FINAL), None)
                time.sleep(2)
            server_log = (tmp_path / "prefect.log").read_text()
            hint = " (Prefect 3.8's scheduler fails on SQLAlchemy 2.1: pin SQLAlchemy<2.1)" \
                if "bulk_dml" in server_log else ""
            errors = [line for line in server_log.splitlines() if "Error" in line]
            assert scheduled is not None, f"no scheduled run finished{hint}; server errors: {errors[-5:]}"
            run([prefect, "deployment", "schedule", "clear", f"reverso-pipeline/{name}", "--accept-yes"], workspace,
                client_env)
            assert scheduled["state_type"] == "COMPLETED", (scheduled["state"], worker_log.read_text()[-4000:])
            assert scheduled["auto_scheduled"] and scheduled["parameters"]["on_busy"] == "fail"
            logs = run_logs(api, scheduled["id"])
            assert "[train]" in logs and "didn't change, skipping" in logs, logs[-3000:]
            assert (workspace / "dvc.lock").read_bytes() == lock_before
            # Runs the schedule had queued before it was cleared still execute, and each rewrites flow-run.json:
            # it names one of this deployment's scheduled runs (not necessarily the first to finish).
            recorded = json.loads((workspace / ".reverso/flow-run.json").read_text())["id"]
            queued = post(f"{api}/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
            assert recorded in {r["id"] for r in queued if r["auto_scheduled"]}, (recorded, queued)
