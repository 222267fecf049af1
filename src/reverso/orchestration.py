"""Prefect flows over the DVC stages. No ML here: each task runs ``dvc repro <stage>``.

Output streams line by line into the Prefect log; transient failures (DVC's lock, a dropped
connection) are retried with backoff; a workspace lock keeps two pipeline runs from touching one
workspace's DVC at once (the second waits, or fails fast with a clear message).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from reverso.telemetry import OFFLINE_ENV

STAGES = ("prepare-model", "collect", "reverse", "pairs", "train", "evaluate", "promote")
TRANSIENT = re.compile(r"unable to acquire lock|lock.*is held|connection (refused|reset)|timed? ?out", re.I)
LOCK_FILE = Path(".reverso/pipeline.lock")


class PipelineError(RuntimeError):
    """A stage failed or the workspace is busy; the message says which and why."""


class TransientStageError(PipelineError):
    """A failure worth retrying (lock contention, network)."""


def stage_env() -> dict[str, str]:
    """The subprocess environment: this venv's tools first on PATH, telemetry off."""
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in OFFLINE_ENV.items()}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def dvc_executable() -> str:
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else "dvc"


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except TransientStageError:
        return True
    except Exception:
        return False
    return False


@task(name="dvc-repro", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=_retry_if_transient,
      task_run_name="dvc repro {stage}")
def dvc_repro(stage: str, workspace: str, force: bool = False) -> str:
    """Run one DVC stage (argument list, no shell), streaming its output into the Prefect log."""
    logger = get_run_logger()
    command = [dvc_executable(), "repro", "--single-item", stage] + (["--force"] if force else [])
    logger.info("running %s in %s", " ".join(command), workspace)
    tail: list[str] = []
    with subprocess.Popen(command, cwd=workspace, env=stage_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                logger.info("[%s] %s", stage, line)
                tail = [*tail[-39:], line]
        code = process.wait()
    if code != 0:
        text = "\n".join(tail)
        error = TransientStageError if TRANSIENT.search(text) else PipelineError
        raise error(f"stage {stage!r} failed (exit {code}); last output:\n{text}")
    return "\n".join(tail[-3:])


@contextmanager
def workspace_lock(workspace: Path, wait: bool, timeout_s: float = 3600) -> Iterator[None]:
    """One pipeline per workspace: DVC itself fails when two repro runs overlap."""
    path = workspace / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or time.monotonic() > deadline:
                    raise PipelineError(
                        f"another reverso pipeline is running in {workspace.resolve()} (lock {path}); "
                        "wait for it or run with on_busy='wait'") from None
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply_overrides(workspace: Path, overrides: list[str]) -> None:
    """Write ``section.field=value`` overrides into params.yaml (as ``dvc exp run -S`` does), validated."""
    import yaml

    from reverso.config import _set_dotted, load_params, parse_override

    if not overrides:
        return
    path = workspace / "params.yaml"
    load_params(path, overrides)  # validate before touching the file
    tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")


def _notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Failure hook: one clear summary line in the log, and a webhook call when configured."""
    import json
    import urllib.request

    summary = f"reverso flow {flow.name!r} run {flow_run.name!r} failed: {state.message}"
    print(summary)
    url = os.environ.get("REVERSO_FAILURE_WEBHOOK")
    if url:
        request = urllib.request.Request(url, data=json.dumps({"text": summary}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            print(f"failure webhook {url} unreachable: {exc}")


@flow(name="reverso-pipeline", log_prints=True, on_failure=[_notify_failure])
def pipeline_flow(stages: list[str] | None = None, force: bool = False, overrides: list[str] | None = None,
                  workspace: str = ".", on_busy: str = "wait") -> list[str]:
    """collect -> reverse -> pairs -> train -> evaluate -> promote, each a DVC stage."""
    chosen = list(stages or STAGES)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise PipelineError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    root = Path(workspace)
    with workspace_lock(root, wait=on_busy == "wait"):
        apply_overrides(root, overrides or [])
        for stage in [s for s in STAGES if s in chosen]:
            dvc_repro(stage, str(root), force)
    return chosen


@flow(name="reverso-promote", log_prints=True, on_failure=[_notify_failure])
def promote_flow(workspace: str = ".", dry_run: bool = False, on_busy: str = "wait") -> None:
    """Re-evaluate and run the promotion gate (through DVC, so results stay versioned)."""
    root = Path(workspace)
    with workspace_lock(root, wait=on_busy == "wait"):
        dvc_repro("evaluate", str(root))
        if dry_run:
            command = [str(Path(sys.executable).parent / "reverso"), "promote", "--dry-run"]
            subprocess.run(command, cwd=root, env=stage_env(), check=True)
        else:
            dvc_repro("promote", str(root))


def run_pipeline_flow(workspace: Path, stages: list[str] | None, force: bool, overrides: list[str]) -> None:
    """Run the flow in-process (ephemeral Prefect API unless PREFECT_API_URL points at a server)."""
    state = pipeline_flow(stages=stages, force=force, overrides=overrides, workspace=str(workspace),
                          return_state=True)
    if not state.is_completed():
        try:
            state.result()
        except PipelineError:
            raise
        except Exception as exc:
            raise PipelineError(f"pipeline flow {state.name}: {exc}") from exc
