"""The deployment stack on loopback, started once for the deployment tests: S3-compatible storage (moto's
server mode), an MLflow tracking server keeping its artefacts in a bucket there, a Prefect server, and a
process worker executing prefect.yaml's deployments in one copy of the repo. Credentials live only in the
environment, so the tests can look for them in everything reverso writes."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from support.servers import BIN, free_port, post, server
from support.workspace import copy_repo, run

KEY_ID = "reverso-test-key-id"
REGION = "us-east-1"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
BUCKETS = ("reverso-dvc", "reverso-mlflow")


@dataclass
class Stack:
    root: Path
    workspace: Path
    api: str  # the Prefect server's API
    mlflow_uri: str
    endpoint: str  # the S3 endpoint
    secret: str  # the S3 secret key: unique, so any occurrence found later is a leak
    env: dict[str, str]  # a client's environment: the CLI, DVC and the worker all use it
    outputs: list[str] = field(default_factory=list)  # what every command run through `run` printed

    def run(self, command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        output = run(command, cwd or self.workspace, env or self.env)
        self.outputs.append(output)
        return output

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def server_log(self) -> Path:
        return self.root / "prefect.log"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict) -> list[dict]:
        return post(f"{self.api}{path}", body)

    def delete(self, path: str) -> bool:
        """DELETE ``path``; False where the server could not take it now (a busy SQLite server answers 503)."""
        request = urllib.request.Request(f"{self.api}{path}", method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as error:
            if error.code == 404:  # already gone (it ran, or the schedule's clear removed it)
                return True
            if error.code >= 500:
                return False
            raise
        return True

    def wait_final(self, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flow_run = self.get(f"/flow_runs/{run_id}")
            if flow_run["state_type"] in FINAL:
                return flow_run
            time.sleep(2)
        raise AssertionError(f"flow run {run_id} not finished after {timeout}s; worker log:\n"
                             f"{self.worker_log.read_text()[-4000:]}")

    def run_logs(self, run_id: str) -> str:
        rows = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
        return "\n".join(row["message"] for row in rows)

    def bucket_keys(self, bucket: str) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def s3(self):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=self.secret)


@contextmanager
def deployment_stack(root: Path) -> Iterator[Stack]:
    """Start S3, MLflow (artefacts on S3), Prefect and a worker for a fresh copy of the repo under ``root``."""
    workspace = root / "ws"
    workspace.mkdir()
    copy_repo(workspace)
    s3_port, mlflow_port, prefect_port, worker_port = (free_port() for _ in range(4))
    endpoint, mlflow_uri = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{mlflow_port}"
    api = f"http://127.0.0.1:{prefect_port}/api"
    secret = f"s3-5ecret-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "AWS_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PREFECT_HOME=str(root / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false", DO_NOT_TRACK="1",
               # schedule one run at a time and look for due schedules every 2 s (defaults: 3-100 runs, 60 s)
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2", PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS="1",
               PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="1",
               AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION,
               MLFLOW_S3_ENDPOINT_URL=endpoint, DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    client_env = {**env, "PREFECT_API_URL": api, "REVERSO_WORKSPACE": str(workspace), "MLFLOW_TRACKING_URI": mlflow_uri,
                  "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                  "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port)}
    stack = Stack(root, workspace, api, mlflow_uri, endpoint, secret, client_env)
    prefect = str(BIN / "prefect")
    with ExitStack() as servers:
        servers.enter_context(server([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                                     f"{endpoint}/moto-api/", env, root / "s3.log"))
        for bucket in BUCKETS:
            stack.s3().create_bucket(Bucket=bucket)
        servers.enter_context(server(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--backend-store-uri",
             f"sqlite:///{root / 'server.db'}", "--serve-artifacts", "--artifacts-destination",
             "s3://reverso-mlflow/artifacts", "--workers", "1"], f"{mlflow_uri}/health", env, root / "mlflow.log"))
        servers.enter_context(server([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
                                     f"{api}/health", env, stack.server_log))
        stack.run([prefect, "work-pool", "create", "reverso-process", "--type", "process"])
        stack.run([prefect, "--no-prompt", "deploy", "--name", "reverso-manual"])
        servers.enter_context(server([prefect, "worker", "start", "--pool", "reverso-process", "--type", "process",
                                      "--with-healthcheck"], f"http://127.0.0.1:{worker_port}/health", client_env,
                                     stack.worker_log))
        yield stack


def interval_deployment(workspace: Path, target: Path, seconds: int) -> str:
    """prefect.yaml's nightly deployment as it is, but on a short interval instead of its cron."""
    project = yaml.safe_load((workspace / "prefect.yaml").read_text())
    nightly = next(d for d in project["deployments"] if d["name"] == "reverso-nightly")
    project["deployments"] = [{**nightly, "name": "reverso-interval", "schedules": [{"interval": seconds}]}]
    target.write_text(yaml.safe_dump(project, sort_keys=False))
    return "reverso-interval"


def cached_outs(workspace: Path) -> list[Path]:
    """Every file DVC caches (and so pushes) according to dvc.lock: outs without `cache: false` in dvc.yaml."""
    uncached = {path for stage in yaml.safe_load((workspace / "dvc.yaml").read_text())["stages"].values()
                for kind in ("outs", "metrics", "plots") for out in stage.get(kind, []) if isinstance(out, dict)
                for path, options in out.items() if options and options.get("cache") is False}
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    files: list[Path] = []
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] in uncached:
                continue
            path = workspace / out["path"]
            files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files
