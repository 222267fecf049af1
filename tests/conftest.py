"""Shared fixtures: a tiny random-init Llama (real architecture, real tokenizer) and a tiny seed corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest workers on a 2-core machine: one thread each (their subprocesses inherit it),
    # so two torch computations never oversubscribe the cores. The tiny models gain nothing from a second thread.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from reverso.telemetry import disable_telemetry  # noqa: E402 - after the thread setting

disable_telemetry()
REPO = Path(__file__).resolve().parents[1]

# The modules that take minutes (docs/benchmarks.md, the durations report), longest first. `make test` runs
# them first, module by module (pytest-xdist --dist loadscope), so the short ones fill in around them and
# the two workers finish together; every other module keeps its place after them. test_vllm comes once
# the longest are under way, by when `make test` has built .venv-vllm beside them.
LONG_FIRST = ("test_deployed_pipeline", "test_study", "test_improve", "test_search", "test_improve_worker",
              "test_postgres_mlflow", "test_vllm", "test_train_ddp", "test_train_resume", "test_diagnostics")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(LONG_FIRST)))  # stable: order within a module kept


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer and chat template, random weights."""
    from reverso.config import ModelParams
    from reverso.prepare_model import prepare_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    prepare_model(ModelParams(source="random-init"), out)
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def seed_dir(tmp_path: Path) -> Path:
    personas = [{"id": f"p{i}", "domain": "test", "system": f"You are assistant number {i}.",
                 "split": "eval" if i >= 4 else "train"} for i in range(6)]
    queries = [{"id": f"q{i}", "task": "explanation", "text": f"Explain topic number {i} briefly.",
                "split": "eval" if i >= 8 else "train"} for i in range(10)]
    write_jsonl(tmp_path / "seed" / "personas.jsonl", personas)
    write_jsonl(tmp_path / "seed" / "queries.jsonl", queries)
    return tmp_path / "seed"


@pytest.fixture()
def isolated_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture(autouse=True)
def _prefect_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.getbasetemp() / "prefect-home"))


@pytest.fixture(autouse=True)
def _no_mlflow_state_between_tests() -> object:
    """An in-process train()/evaluate() makes its workspace's experiment the process's active one (and may
    leave a run open): clear both after every test, so a later test's fresh tracking URI is not asked
    for an experiment id from another database."""
    yield
    import sys

    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        while fluent.active_run() is not None:
            fluent.end_run()
        fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
