"""Artefacts off the laptop: an S3-compatible server on loopback (moto's server mode) as the DVC remote
and as the MLflow server's artefact store. Credentials come from the environment only and must not land
in anything reverso writes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

from support.servers import BIN, free_port, server
from support.workspace import OVERRIDES, copy_repo, run

KEY_ID = "reverso-test-key-id"
REGION = "us-east-1"


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


def bucket_keys(endpoint: str, secret: str, bucket: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                      aws_secret_access_key=secret)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.mark.slow
@pytest.mark.integration
def test_dvc_remote_and_mlflow_artefacts_round_trip_through_s3(tmp_path: Path) -> None:
    import boto3
    from mlflow import MlflowClient

    from reverso.orchestration import apply_overrides

    secret = f"s3-5ecret-{uuid.uuid4().hex}"  # unique: any occurrence found later is a leak
    s3_port, mlflow_port = free_port(), free_port()
    endpoint, mlflow_uri = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{mlflow_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "AWS_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PREFECT_HOME=str(tmp_path / "prefect-home"),
               AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION,
               MLFLOW_S3_ENDPOINT_URL=endpoint, DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="1")
    moto_cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
    mlflow_cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                  "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--serve-artifacts",
                  "--artifacts-destination", "s3://reverso-mlflow/artifacts", "--workers", "1"]
    outputs: list[str] = []
    with server(moto_cmd, f"{endpoint}/moto-api/", env, tmp_path / "s3.log"):
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=secret)
        for bucket in ("reverso-dvc", "reverso-mlflow"):
            s3.create_bucket(Bucket=bucket)
        with server(mlflow_cmd, f"{mlflow_uri}/health", env, tmp_path / "mlflow.log"):
            # A reference run: the DVC stages up to train, the model logged and registered on the server.
            workspace = tmp_path / "ws"
            workspace.mkdir()
            copy_repo(workspace)
            apply_overrides(workspace, OVERRIDES)
            client_env = {**env, "MLFLOW_TRACKING_URI": mlflow_uri}
            outputs.append(run([str(BIN / "dvc"), "repro", "train"], workspace, client_env))

            # (a) DVC remote on S3: endpoint in the committed config, credentials only in the environment.
            for command in (["remote", "add", "-d", "storage", "s3://reverso-dvc/cache"],
                            ["remote", "modify", "storage", "endpointurl", endpoint]):
                run([str(BIN / "dvc"), *command], workspace, client_env)
            config = (workspace / ".dvc/config").read_text()
            assert "s3://reverso-dvc/cache" in config and secret not in config and KEY_ID not in config
            run(["git", "add", "-A"], workspace, client_env)
            run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "reference run"], workspace,
                client_env)
            outputs.append(run([str(BIN / "dvc"), "push", "dvc.yaml"], workspace, client_env))
            assert any(key.startswith("cache/files/md5/") for key in bucket_keys(endpoint, secret, "reverso-dvc"))

            clone = tmp_path / "clone"
            run(["git", "clone", "-q", str(workspace), str(clone)], tmp_path, client_env)
            assert not (clone / "models/policy").exists()  # outputs are not in git
            outputs.append(run([str(BIN / "dvc"), "pull", "dvc.yaml"], clone, client_env))  # study/ has its own
            files = cached_outs(workspace)
            assert workspace / "models/policy/adapter_model.safetensors" in files
            for path in files:
                copy = clone / path.relative_to(workspace)
                assert copy.read_bytes() == path.read_bytes(), f"{path.relative_to(workspace)} differs after pull"
            status = run([str(BIN / "dvc"), "status", "--cloud", "dvc.yaml"], clone, client_env)
            assert "in sync" in status, status

            # (b) MLflow artefacts on S3: the registered version's adapter comes back from the bucket.
            client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
            version = client.get_model_version_by_alias("reverso-policy", "challenger")
            keys = bucket_keys(endpoint, secret, "reverso-mlflow")
            assert any(k.startswith("artifacts/") and k.endswith("adapter_model.safetensors") for k in keys), keys
            import mlflow

            previous = mlflow.get_tracking_uri()
            mlflow.set_tracking_uri(mlflow_uri)  # a models:/ URI resolves on this server
            try:
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/reverso-policy@challenger",
                                                                 dst_path=str(tmp_path / "download")))
            finally:
                mlflow.set_tracking_uri(previous)
            downloaded = list(local.rglob("adapter_model.safetensors"))
            assert downloaded and downloaded[0].read_bytes() == \
                (workspace / "models/policy/adapter_model.safetensors").read_bytes()

            # Nothing reverso wrote or logged holds the secret (or the key id, for the tracked metadata).
            run_data = client.get_run(version.run_id).data
            tracked = [*run_data.params.values(), *run_data.tags.values(), *version.tags.values()]
            assert not [v for v in tracked if secret in v or KEY_ID in v]
    haystacks = [o.encode() for o in outputs]
    haystacks += [p.read_bytes() for root in (workspace, clone, tmp_path / "download")
                  for p in root.rglob("*") if p.is_file()]
    haystacks += [(tmp_path / "server.db").read_bytes(), (tmp_path / "mlflow.log").read_bytes()]
    assert not [h for h in haystacks if secret.encode() in h], "the S3 secret leaked into a written file"
