"""Faults: atomic outputs, full disk, kill -9 during collect, busy workspaces, killed stages, tracking down."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from reverso.config import TrainParams
from reverso.io import DataError, write_json, write_jsonl
from reverso.locks import WorkspaceBusy, hold
from reverso.orchestration import PipelineError, describe_exit, workspace_lock
from support.servers import free_port

BIN = Path(sys.executable).parent


def test_a_failed_write_leaves_the_old_output_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "responses.jsonl"
    write_jsonl(out, [{"a": 1}])

    def rows():  # noqa: ANN202
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(out, rows())
    assert out.read_text() == '{"a": 1}\n' and os.listdir(tmp_path) == ["responses.jsonl"]


def test_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    write_json(out, {"old": 1})

    def rows():  # noqa: ANN202
        yield {"a": 1}
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DataError, match="no space left on the device while writing .*responses.jsonl"):
        write_jsonl(tmp_path / "responses.jsonl", rows())
    assert json.loads(out.read_text()) == {"old": 1} and sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_full_disk_through_the_cli_is_one_line(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC: the CLI prints one line, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    script = textwrap.dedent("""
        import sys, typer
        from reverso.cli.common import friendly
        @friendly
        def run() -> None:
            with open("/dev/full", "w") as handle:
                handle.write("x" * 65536)
                handle.flush()
        typer.run(run)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "no space left on the device" in result.stderr
    assert "Traceback" not in result.stderr


def test_prepare_model_with_a_missing_hf_path_names_the_parameter(tmp_path: Path) -> None:
    result = subprocess.run([str(BIN / "reverso"), "prepare-model", "--out", str(tmp_path / "m"), "-S",
                             "model.source=hf", "-S", "model.hf_path=/nonexistent/model"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "model.hf_path" in lines[0] and "/nonexistent/model" in lines[0]


def test_killed_stage_is_reported_as_killed() -> None:
    assert describe_exit(-9, "") == "killed (SIGKILL)"
    dvc = "ERROR: failed to reproduce 'train': failed to run: reverso train, exited with -9"
    assert describe_exit(255, dvc) == "killed (SIGKILL)"
    assert describe_exit(255, "failed to run: reverso train, exited with 137") == "killed (SIGKILL)"
    assert describe_exit(1, "failed to run: reverso train, exited with 1") == "exit 1"


def test_default_save_steps_let_a_killed_default_run_resume() -> None:
    # the default run trains ~16 optimizer steps: a checkpoint must land well before the end
    assert TrainParams().save_steps <= 8


def test_second_pipeline_waits_saying_for_what_then_gives_up(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with workspace_lock(tmp_path, wait=False):
        started = time.monotonic()
        with pytest.raises(PipelineError, match="another reverso pipeline is running.*pid") as caught:
            with workspace_lock(tmp_path, wait=True, timeout_s=1.5):
                pass
        assert 1.0 < time.monotonic() - started < 30 and "gave up after waiting" in str(caught.value)
    assert "waiting for" in capsys.readouterr().out


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from reverso.locks import STAGE_LOCK, hold
    with hold(STAGE_LOCK, "reverso train"):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
""")


def test_two_stage_commands_in_one_checkout(tmp_path: Path) -> None:
    """While one stage holds the workspace, another waits (saying for what) and gives up clearly."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "60"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = {**os.environ, "REVERSO_LOCK_TIMEOUT": "2"}
        result = subprocess.run([str(BIN / "reverso"), "reverse"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"waiting for `reverso train` (pid {holder.pid}" in result.stderr
        assert "another reverso stage is running" in result.stderr and "gave up" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    # a killed holder releases the lock at once (OS file lock)
    with hold(tmp_path / ".reverso/stage.lock", "test", wait=False):
        pass


def test_lock_refuses_at_once_without_waiting(tmp_path: Path) -> None:
    with hold(tmp_path / "x.lock", "first", wait=False):
        with pytest.raises(WorkspaceBusy, match="`first`"):
            with hold(tmp_path / "x.lock", "second", wait=False):
                pass


def test_unreachable_tracking_server_is_one_clear_error(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = uri
    # the hang guard: MLflow's own retries would take minutes; how soon it gives up is the next test's
    result = subprocess.run([str(BIN / "reverso"), "train"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert uri in result.stderr and "unreachable" in result.stderr and "nothing was trained" in result.stderr


def test_the_tracking_probe_gives_up_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock the test owns: each probe spends its whole timeout (a black-holed host), retries sleep
    2 s, and the error comes once the budget is spent - not a wall-clock measurement on a busy machine."""
    from reverso import tracking

    now = [100.0]
    timeouts: list[float] = []

    def probe(uri: str, timeout: float) -> str:
        timeouts.append(timeout)
        now[0] += timeout
        return "timed out"

    monkeypatch.setattr(tracking, "_probe", probe)
    monkeypatch.setattr(tracking, "time", SimpleNamespace(  # this module's clock only
        monotonic=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds)))
    with pytest.raises(tracking.TrackingUnreachable, match="http://tracking.invalid:5000.*timed out"):
        tracking.ensure_reachable("http://tracking.invalid:5000", budget_s=15.0)
    assert len(timeouts) >= 2 and max(timeouts) <= 5.0  # it retried, each probe bounded
    assert now[0] - 100.0 <= 15.0 + 0.5  # and stopped inside the budget (the last probe's floor is 0.5 s)
    probes = len(timeouts)
    tracking.ensure_reachable("sqlite:///mlflow.db")  # file stores need no server: no probe
    assert len(timeouts) == probes


COLLECT = ["collect", "-S", "collect.sampler.backend=hf",  # HF batches of 1 prompt: many progress records
           "-S", "collect.sessions=10", "-S", "collect.turns=1", "-S", "collect.samples_per_turn=2",
           "-S", "collect.system_constraints=2", "-S", "collect.sampler.batch_size=2",
           "-S", "collect.sampler.max_new_tokens=24"]


@pytest.mark.slow
def test_kill_9_during_collect_resumes_from_sampled_batches(tiny_model_dir: Path, seed_dir: Path,
                                                            tmp_path: Path) -> None:
    def run_dir(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        return folder

    def command(folder: Path) -> list[str]:
        return [str(BIN / "reverso"), *COLLECT, "--model", str(tiny_model_dir), "--seed-dir", str(seed_dir)]

    killed = run_dir("killed")
    first = subprocess.Popen(command(killed), cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = killed / ".reverso/collect-progress"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        files = list(progress.glob("collect-*.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert first.poll() is None, "collect finished before it could be killed; raise collect.sessions"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (killed / "data/responses.jsonl").exists() and not (killed / "data/sessions.jsonl").exists()
    done = len(next(progress.glob("collect-*.jsonl")).read_text().splitlines())

    second = subprocess.run(command(killed), cwd=killed, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "collect: resuming:" in second.stdout and f"{done} batches" in second.stdout
    assert not list(progress.glob("collect-*.jsonl"))  # cleaned up after success

    clean = run_dir("clean")
    third = subprocess.run(command(clean), cwd=clean, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    resumed = (killed / "data/responses.jsonl").read_text().splitlines()
    assert len(resumed) == 10 * 2
    assert resumed == (clean / "data/responses.jsonl").read_text().splitlines()  # same as an uninterrupted run
