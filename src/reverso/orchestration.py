"""Prefect flows over the DVC stages. No ML here: each task runs ``dvc repro <stage>``.

Output streams line by line into the Prefect log; transient failures (DVC's lock, a dropped
connection) are retried with backoff; a workspace lock keeps two pipeline runs from touching one
workspace's DVC at once (the second waits, or fails fast with a clear message).
"""

from __future__ import annotations

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

from reverso import locks
from reverso.errors import ReversoError
from reverso.telemetry import OFFLINE_ENV

STAGES = ("prepare-model", "collect", "reverse", "pairs", "train", "evaluate", "promote", "inspect")
TRANSIENT = re.compile(r"unable to acquire lock|lock.*is held|connection (refused|reset)|timed? ?out", re.I)
LOCK_FILE = Path(".reverso/pipeline.lock")
SIGNALLED = re.compile(r"exited with (-\d+|1[3-5]\d)\b")


class PipelineError(ReversoError, RuntimeError):
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


def describe_exit(code: int, output: str) -> str:
    """How a stage ended: "killed (SIGKILL)" for a signal, even when DVC reports it as exit 255."""
    import signal

    number = -code if code < 0 else None
    if number is None:  # DVC prints the child's status: "exited with -9" or a shell's 128 + signal
        found = SIGNALLED.findall(output)
        if found:
            value = int(found[-1])
            number = -value if value < 0 else value - 128 if value > 128 else None
    if number:
        try:
            return f"killed ({signal.Signals(number).name})"
        except ValueError:
            return f"killed (signal {number})"
    return f"exit {code}"


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
        raise error(f"stage {stage!r} failed ({describe_exit(code, text)}); last output:\n{text}")
    return "\n".join(tail[-3:])


@contextmanager
def workspace_lock(workspace: Path, wait: bool, timeout_s: float | None = None) -> Iterator[None]:
    """One pipeline per workspace: DVC itself fails when two repro runs overlap.

    The second run prints what it waits for (command, pid, since when) and gives up after
    ``timeout_s`` (default ``REVERSO_LOCK_TIMEOUT``, 3600 s); with ``wait=False`` it refuses at once.
    """
    path = workspace / LOCK_FILE
    busy = (lambda holder: f"another reverso pipeline is running in {workspace.resolve()}: {holder} holds {path}; "
                           "wait for it or run with on_busy='wait'")
    try:
        with locks.hold(path, " ".join(["reverso", *sys.argv[1:]]) or "reverso pipeline", wait=wait,
                        timeout_s=timeout_s, busy=busy, notify=print):
            yield
    except locks.WorkspaceBusy as exc:
        raise PipelineError(str(exc)) from None


def apply_overrides(workspace: Path, overrides: list[str]) -> None:
    """Write ``section.field=value`` overrides into params.yaml (as ``dvc exp run -S`` does), validated.

    Round-trip YAML (ruamel, as DVC itself uses): the file keeps its comments and key order.
    """
    from ruamel.yaml import YAML

    from reverso.config import _set_dotted, load_params, parse_override

    if not overrides:
        return
    path = workspace / "params.yaml"
    load_params(path, overrides)  # validate before touching the file
    document = YAML()
    document.preserve_quotes = True
    tree = document.load(path.read_text(encoding="utf-8")) or {}
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    with path.open("w", encoding="utf-8") as stream:
        document.dump(tree, stream)


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


FLOW_RUN_FILE = Path(".reverso/flow-run.json")


def record_flow_run(workspace: Path) -> None:
    """Note which Prefect flow run is driving the stages; the summary and the inspector print it."""
    import json

    from prefect.runtime import flow_run

    ui_url = str(getattr(flow_run, "ui_url", None) or "")
    info = {"flow": flow_run.flow_name, "name": flow_run.name, "id": str(flow_run.id),
            # no UI behind the ephemeral API: Prefect then builds "None/flow-runs/..."
            "ui_url": ui_url if ui_url.startswith("http") else None, "api_url": os.environ.get("PREFECT_API_URL")}
    path = workspace / FLOW_RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


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
        record_flow_run(root)
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


def _result(state: Any, what: str) -> Any:
    """A finished flow's return value; a failed flow's error as one PipelineError."""
    try:
        return state.result()
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(f"{what} flow {state.name}: {exc}") from exc


def run_pipeline_flow(workspace: Path, stages: list[str] | None, force: bool, overrides: list[str]) -> None:
    """Run the flow in-process (ephemeral Prefect API unless PREFECT_API_URL points at a server)."""
    state = pipeline_flow(stages=stages, force=force, overrides=overrides, workspace=str(workspace),
                          return_state=True)
    _result(state, "pipeline")


STUDY_SHARED = ("prepare-model",)  # each replicate collects its own data (study-collect@SEED, study-pairs@SEED)
STUDY_PIPELINE = "study/dvc.yaml"  # its own dvc.yaml: a plain `dvc repro` never starts the study


def study_items(workspace: Path) -> list[str]:
    """The study's DVC stage items in run order, from the workspace's params.

    The base and the A/A model are scored first and each arm x seed right after it trains, so a study
    packed part-way (``reverso study pack``) already holds a reading of every arm it trained.
    """
    from reverso.config import load_params

    study = load_params(workspace / "params.yaml").study
    names = [f"{arm}-{seed}" for arm in study.train_order() for seed in study.seeds]
    aa = ["study-evaluate-aa"] if study.aa_scale > 0 else []
    items = ([f"study-{part}@{seed}" for seed in study.seeds for part in ("collect", "pairs")]
             + ["study-evaluate-base", *aa]
             + [item for n in names for item in (f"study-train@{n}", f"study-evaluate@{n}")] + ["study-report"])
    return [f"{STUDY_PIPELINE}:{item}" for item in items]


@flow(name="reverso-study", log_prints=True, on_failure=[_notify_failure])
def study_flow(overrides: list[str] | None = None, workspace: str = ".", force: bool = False,
               on_busy: str = "wait") -> dict[str, str]:
    """Shared stages once, then every arm x seed's training and evaluation, then the report."""
    root = Path(workspace)
    started = time.monotonic()
    status: dict[str, str] = {}
    with workspace_lock(root, wait=on_busy == "wait"):
        apply_overrides(root, overrides or [])
        for stage in [*STUDY_SHARED, *study_items(root)]:
            tail = dvc_repro(stage, str(root), force and stage.startswith(STUDY_PIPELINE))
            skipped = "didn't change, skipping" in tail or "is cached - skipping" in tail
            name = stage.removeprefix(f"{STUDY_PIPELINE}:")
            status[name] = "skipped (already finished)" if skipped else "ran"
            print(f"{name}: {status[name]}")
    print(f"study finished in {time.monotonic() - started:.0f} s")
    return status


def run_study_flow(workspace: Path, overrides: list[str], force: bool = False) -> dict[str, str]:
    """Run the study flow in-process; returns each stage item's status (ran / skipped)."""
    state = study_flow(overrides=overrides, workspace=str(workspace), force=force, return_state=True)
    return _result(state, "study")


IMPROVE_PIPELINE = "improve/dvc.yaml"  # its own dvc.yaml: a plain `dvc repro` never starts the loop
ROUND_STAGES = ("champion", "collect", "reverse", "pairs", "train", "evaluate", "promote")


def _skipped(tail: str) -> bool:
    return "didn't change, skipping" in tail or "is cached - skipping" in tail


@flow(name="improve", log_prints=True, on_failure=[_notify_failure])
def improve_flow(rounds: int | None = None, next_round: bool = False, final_test: bool | None = None,
                 overrides: list[str] | None = None, workspace: str = ".", on_busy: str = "wait",
                 restart: bool = False) -> dict[str, str]:
    """The self-improving loop: rounds of champion -> collect -> ... -> promote, each a DVC stage item.

    ``rounds`` (default improve.rounds) rounds, or with ``next_round`` one more round than have finished
    (the scheduled deployment). Finished items are skipped, so a killed run resumes where it stopped.
    """
    import json

    from reverso import improve
    from reverso.config import load_params

    root = Path(workspace)
    started = time.monotonic()
    status: dict[str, str] = {}
    with workspace_lock(root, wait=on_busy == "wait"):
        apply_overrides(root, overrides or [])
        record_flow_run(root)
        params = load_params(root / "params.yaml")
        dvc_repro("prepare-model", str(root))
        start = improve.start_campaign(params, root, restart=restart)
        target = improve.finished_rounds(root) + 1 if next_round else (rounds or params.improve.rounds)
        improve.write_plan(root, improve.round_plan(params, target, root))
        print(f"improve: rounds 1..{target}, starting from {start.get('champion_version') or 'the base model'} "
              f"(improve/start.json); reference: {params.improve.reference}")
        timings_path = root / ".reverso/improve/timings.json"
        timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
        items = [(str(k), f"improve-{stage}@{k}") for k in range(1, target + 1) for stage in ROUND_STAGES]
        if final_test if final_test is not None else (params.improve.final_test and not next_round):
            items.append(("final", "improve-final"))
        for key, item in items:
            began = time.monotonic()
            tail = dvc_repro(f"{IMPROVE_PIPELINE}:{item}", str(root))
            status[item] = "skipped (already finished)" if _skipped(tail) else "ran"
            if status[item] == "ran":
                timings.setdefault(key, {})[item.split("@")[0]] = round(time.monotonic() - began, 1)
                timings_path.parent.mkdir(parents=True, exist_ok=True)
                timings_path.write_text(json.dumps(timings, indent=2) + "\n")
            print(f"{item}: {status[item]}")
        dvc_repro(f"{IMPROVE_PIPELINE}:improve-report", str(root), force=True)
    print(f"improve finished in {time.monotonic() - started:.0f} s")
    return status


def run_improve_flow(workspace: Path, overrides: list[str], rounds: int | None = None, next_round: bool = False,
                     final_test: bool | None = None, restart: bool = False, on_busy: str = "wait") -> dict[str, str]:
    """Run the improve flow in-process; returns each stage item's status (ran / skipped)."""
    state = improve_flow(rounds=rounds, next_round=next_round, final_test=final_test, overrides=overrides,
                         workspace=str(workspace), on_busy=on_busy, restart=restart, return_state=True)
    return _result(state, "improve")
