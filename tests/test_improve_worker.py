"""The scheduled improve deployment for real: prefect.yaml deployed to a loopback Prefect server, one round
executed by a process worker (tiny model, configs/improve/smoke.yaml), and a second trigger waiting on it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from support.servers import BIN, free_port, post, server
from support.stack import FINAL
from support.workspace import copy_repo, run

SMOKE = "configs/improve/smoke.yaml"


def flow_run_state(api: str, flow_run_id: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{api}/flow_runs/{flow_run_id}", timeout=10) as response:
        return json.loads(response.read())["state_type"]


@pytest.mark.slow
@pytest.mark.integration
def test_scheduled_improve_round_runs_on_a_real_worker(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    copy_repo(workspace)
    from reverso.config import recipe_overrides
    from reverso.orchestration import apply_overrides

    apply_overrides(workspace, recipe_overrides(workspace / SMOKE))  # the workspace the worker runs in
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="2",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    client_env = {**env, "PREFECT_API_URL": api, "REVERSO_WORKSPACE": str(workspace)}
    with server([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                f"{api}/health", env, tmp_path / "prefect.log"):
        run([str(BIN / "prefect"), "work-pool", "create", "reverso-process", "--type", "process"], workspace,
            client_env)
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "reverso-improve"], workspace, client_env)
        deployment = next(d for d in post(f"{api}/deployments/filter", {}) if d["name"] == "reverso-improve")
        assert deployment["schedules"] and deployment["schedules"][0]["schedule"].get("cron")  # registered
        assert (deployment.get("global_concurrency_limit") or {}).get("limit") == 1
        assert deployment["parameters"]["next_round"] is True

        with (tmp_path / "worker.log").open("w") as log:
            worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "reverso-process",
                                       "--type", "process"], cwd=workspace, env=client_env, stdout=log,
                                      stderr=subprocess.STDOUT)
            try:
                started = run([str(BIN / "prefect"), "deployment", "run", "improve/reverso-improve"], workspace,
                              client_env)
                flow_run_id = next(line.split()[-1] for line in started.splitlines() if "UUID" in line)
                lock = workspace / ".reverso/pipeline.lock"
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
                    time.sleep(0.5)
                # a second trigger while the round runs waits for it, saying for what
                second = subprocess.run([str(BIN / "reverso"), "improve", "--next"], cwd=workspace,
                                        env={**client_env, "REVERSO_LOCK_TIMEOUT": "3"}, capture_output=True,
                                        text=True, timeout=300)
                said = second.stdout + second.stderr
                assert second.returncode != 0 and "waiting for" in said and "gave up after waiting" in said, said
                deadline = time.monotonic() + 900
                state = "PENDING"
                while time.monotonic() < deadline and state not in FINAL:
                    time.sleep(2)
                    state = flow_run_state(api, flow_run_id)
            finally:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        assert state == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]

    # the worker ran exactly one round (the first) in the workspace, with its decision and the curve
    decision = json.loads((workspace / "improve/round-1/decision.json").read_text())
    assert decision["decision"] in ("promoted", "rejected") and decision["challenger_version"] == "1"
    assert not (workspace / "improve/round-2").exists()
    assert [r["round"] for r in json.loads((workspace / "metrics/improve.json").read_text())["rounds"]] == [1]
