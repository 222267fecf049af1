"""MLflow tracking and model registry: URIs, curated logging, versions and aliases.

Stages are deprecated in MLflow: reverso uses aliases (``@challenger``, ``@champion``).
The tracking URI honours ``MLFLOW_TRACKING_URI`` and defaults to ``sqlite:///mlflow.db`` in the
workspace, with artefacts under ``mlartifacts/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reverso.config_base import _Section
from reverso.errors import ReversoError


class RegistryParams(_Section):
    """``registry``: MLflow names shared by train, evaluate and promote."""

    experiment: str = "reverso"
    model_name: str = "reverso-policy"

T = TypeVar("T")
CHALLENGER, CHAMPION = "challenger", "champion"


class RegistryError(ReversoError, RuntimeError):
    """The tracking server could not be reached or the registry is not in the expected state."""


def tracking_uri(workspace: str | Path = ".") -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(workspace) / 'mlflow.db').resolve()}"


def with_retries(action: Callable[[], T], what: str, tries: int = 4, first_delay: float = 1.0) -> T:
    """Retry a tracking call with exponential backoff, then fail with a clear message."""
    delay = first_delay
    for attempt in range(1, tries + 1):
        try:
            return action()
        except Exception as exc:  # mlflow raises many transport types; all are retried the same way
            if attempt == tries:
                raise RegistryError(
                    f"MLflow {what} failed after {tries} tries at {tracking_uri()}: {exc}. "
                    "Check MLFLOW_TRACKING_URI and the server; the trained adapter stays in the DVC outputs."
                ) from exc
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def setup(experiment: str, workspace: str | Path = ".") -> str:
    """Point MLflow at the tracking URI and make sure the experiment exists; returns its id."""
    import mlflow

    uri = tracking_uri(workspace)
    mlflow.set_tracking_uri(uri)

    def ensure() -> str:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if uri.startswith("sqlite:"):  # keep local artefacts in the workspace, not the cwd
            location = (Path(workspace) / "mlartifacts").resolve().as_uri()
        return mlflow.create_experiment(experiment, artifact_location=location)

    experiment_id = with_retries(ensure, "experiment setup")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def file_md5(path: str | Path) -> str:
    """MD5 of a file, the same hash DVC records for it in dvc.lock."""
    digest = hashlib.md5()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def register_version(name: str, run_id: str, source: str, tags: dict[str, str],
                     model_id: str | None = None) -> str:
    """Create a model version for ``source`` (a model URI logged in ``run_id``); returns the version."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client()

    def create() -> str:
        try:
            mlflow_client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        version = mlflow_client.create_model_version(name, source=source, run_id=run_id, tags=tags,
                                                      model_id=model_id)
        return str(version.version)

    return with_retries(create, "model registration")


def set_alias(name: str, alias: str, version: str) -> None:
    with_retries(lambda: client().set_registered_model_alias(name, alias, version), f"alias @{alias}")


def alias_version(name: str, alias: str) -> Any | None:
    """The ModelVersion behind ``name@alias``, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def version_str(version: Any | None) -> str | None:
    return str(version.version) if version is not None else None


def set_alias_if(name: str, alias: str, version: str, expected: str | None) -> bool:
    """Compare-and-set: point ``alias`` at ``version`` only while it still points at ``expected``.

    MLflow has no atomic alias update, so this re-reads the alias immediately before writing; a
    caller that gets False must re-decide with the new holder instead of overwriting it.
    """
    if version_str(alias_version(name, alias)) != expected:
        return False
    set_alias(name, alias, version)
    return True


def download_adapter(name: str, version: str) -> Path:
    """The LoRA adapter folder of a registered version, downloaded from its artifact location."""
    import mlflow

    found = with_retries(lambda: client().get_model_version(name, version), f"version {version}")
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=found.source))
    adapter = next(local.rglob("adapter_config.json"), None)
    if adapter is None:
        raise RegistryError(f"version {version} of {name}: no adapter in {found.source}")
    return adapter.parent


def tag_version(name: str, version: str, tags: dict[str, Any]) -> None:
    mlflow_client = client()
    for key, value in tags.items():
        with_retries(lambda k=key, v=value: mlflow_client.set_model_version_tag(name, version, k, str(v)),
                     f"tag {key}")


def keyed_parent_run(marker: Path, field: str, key: str, run_name: str, tags: dict[str, str],
                     params: dict[str, Any]) -> str:
    """A parent MLflow run made once per ``key`` and remembered in ``marker`` (``{field: key, "run_id": ...}``):
    reruns with the same key return the same run, a new key starts a new one. Call after ``setup``."""
    import mlflow

    if marker.exists():
        known = json.loads(marker.read_text())
        if known.get(field) == key:
            return str(known["run_id"])
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(params)
    from reverso.io import write_json

    write_json(marker, {field: key, "run_id": run.info.run_id})
    return run.info.run_id
