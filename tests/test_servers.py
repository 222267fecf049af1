"""The scale-out path for real: the pipeline flow against a real Prefect server and a real MLflow
tracking server (SQLite backend, artefacts served by the server), both on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.servers import BIN, free_port, post, server
from support.workspace import OVERRIDES, copy_repo, run


@pytest.mark.slow
@pytest.mark.integration
def test_pipeline_against_real_prefect_and_mlflow_servers(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    copy_repo(workspace)
    prefect_port, mlflow_port = free_port(), free_port()
    prefect_api, mlflow_uri = f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{mlflow_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", DO_NOT_TRACK="1")
    prefect_cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)]
    mlflow_cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                  "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--serve-artifacts",
                  "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"]
    with server(prefect_cmd, f"{prefect_api}/health", env, tmp_path / "prefect.log"), \
         server(mlflow_cmd, f"{mlflow_uri}/health", env, tmp_path / "mlflow.log"):
        client_env = {**env, "PREFECT_API_URL": prefect_api, "MLFLOW_TRACKING_URI": mlflow_uri}
        output = run([str(BIN / "reverso"), "pipeline", *sum((["-S", o] for o in OVERRIDES), [])], workspace,
                     client_env)
        assert "@challenger" in output
        assert not (workspace / "mlflow.db").exists()  # everything went to the server

        flows = post(f"{prefect_api}/flows/filter", {"flows": {"name": {"any_": ["reverso-pipeline"]}}})
        assert flows, "the flow is not registered on the Prefect server"
        runs = post(f"{prefect_api}/flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
        assert [r["state_type"] for r in runs] == ["COMPLETED"]

        # The deployments in prefect.yaml register against the real server.
        run([str(BIN / "prefect"), "work-pool", "create", "reverso-process", "--type", "process"], workspace,
            client_env)
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], workspace,
            {**client_env, "REVERSO_WORKSPACE": str(workspace)})
        deployments = post(f"{prefect_api}/deployments/filter", {})
        assert {d["name"] for d in deployments} >= {"reverso-nightly", "reverso-weekly-champion", "reverso-manual",
                                                    "reverso-study"}
        nightly = next(d for d in deployments if d["name"] == "reverso-nightly")
        assert nightly["schedules"] and nightly["work_pool_name"] == "reverso-process"

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
        version = client.get_model_version_by_alias("reverso-policy", "challenger")
        assert version.tags["pairs_md5"] and "eval.policy.multi_if.average" in version.tags
        assert client.get_registered_model("reverso-policy").aliases.get("challenger") == version.version
        import mlflow

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(mlflow_uri)  # a models:/ source resolves its logged model on this server
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path / "dl"))
        finally:
            mlflow.set_tracking_uri(previous)
        assert list(Path(local).rglob("adapter_model.safetensors"))  # artefacts served over HTTP
