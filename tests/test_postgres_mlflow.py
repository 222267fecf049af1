"""MLflow as a team runs it: a real PostgreSQL backend store and `mlflow server` on loopback.

train -> evaluate -> promote of a tiny model over HTTP; the server is stopped mid-training: the stage
fails naming the tracking URI, local checkpoints are kept, and a rerun completes the logging.
Never skipped under CI=true: a missing PostgreSQL there is a failure (scripts/system-deps.sh installs it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.pairs import write_pairs
from support.servers import free_port, wait_for

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throw-away cluster on a free loopback port; yields its SQLAlchemy URI."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        message = "PostgreSQL is not installed (run scripts/system-deps.sh: apt-get install postgresql)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="reverso-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data, log = root / "data", root / "server.log"
    subprocess.run([*as_user, str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8"], check=True, capture_output=True)
    options = f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                    "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "mlflow"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"  # the driver pinned in requirements.lock
    finally:
        subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class MlflowServer:
    def __init__(self, backend: str, artifacts: Path, port: int, log: Path) -> None:
        self.command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                        "--backend-store-uri", backend, "--serve-artifacts", "--artifacts-destination",
                        str(artifacts), "--workers", "1"]
        self.uri, self.log, self.process = f"http://127.0.0.1:{port}", log, None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        handle = self.log.open("a")
        # its own session, so stopping it stops its uvicorn workers too
        self.process = subprocess.Popen(self.command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            wait_for(f"{self.uri}/health", self.process, timeout=180)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; server log:\n{self.log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def reverso(args: list[str], cwd: Path, uri: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run([str(BIN / "reverso"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


TRAIN = ["train", "-S", "train.max_steps=16", "-S", "train.save_steps=4", "-S", "train.batch_size=1",
         "-S", "train.max_length=64", "-S", "pairs.max_length=64"]


@pytest.mark.slow
@pytest.mark.integration
def test_train_evaluate_promote_on_postgres_backed_mlflow(postgres: str, tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:
    server = MlflowServer(postgres, tmp_path / "artifacts", free_port(), tmp_path / "mlflow.log")
    server.start()
    try:
        write_pairs(tmp_path)
        shutil.copytree(REPO / "data/seed", tmp_path / "data/seed")
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
        first = subprocess.Popen([str(BIN / "reverso"), *TRAIN, "--model", str(tiny_model_dir)], cwd=tmp_path,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        checkpoints = tmp_path / ".reverso/checkpoints"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            if list(checkpoints.glob("*/checkpoint-*/trainer_state.json")):
                break
            time.sleep(0.1)
        if first.poll() is not None:
            pytest.fail(f"training ended (exit {first.returncode}) before the server could be stopped:\n"
                        f"{first.communicate()[0][-3000:]}")
        server.stop()  # the tracking server dies mid-run
        stopped = time.monotonic()
        output, _ = first.communicate(timeout=600)
        assert first.returncode == 1, output[-3000:]
        assert server.uri in output and "Traceback" not in output, output[-3000:]
        assert time.monotonic() - stopped < 180  # bounded retries with backoff, not a silent hang
        assert list(checkpoints.glob("*/checkpoint-*")), "local checkpoints must survive a tracking failure"
        assert not (tmp_path / "models/policy").exists()

        server.start()  # same Postgres database: the rerun continues the same MLflow run
        second = reverso([*TRAIN, "--model", str(tiny_model_dir)], tmp_path, server.uri)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "resuming training from" in second.stdout
        evaluate = reverso(["evaluate", "--model", str(tiny_model_dir), "-S", "evaluate.suites.ifeval=2",
                            "-S", "evaluate.suites.multi_if=1", "-S", "evaluate.suites.sysbench=0",
                            "-S", "evaluate.multi_if_turns=1", "-S", "evaluate.max_new_tokens=8"],
                           tmp_path, server.uri)
        assert evaluate.returncode == 0, evaluate.stdout[-3000:] + evaluate.stderr[-3000:]
        promote = reverso(["promote"], tmp_path, server.uri)
        assert promote.returncode == 0, promote.stdout[-3000:] + promote.stderr[-3000:]

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
        experiment = client.get_experiment_by_name("reverso")
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 1  # the rerun resumed the interrupted run instead of starting another
        assert runs[0].info.status == "FINISHED" and "train_loss_mean" in runs[0].data.metrics
        assert any(key.startswith("eval.") for key in runs[0].data.metrics)
        versions = client.search_model_versions("name='reverso-policy'")
        assert [v.version for v in versions] == ["1"]
        model = client.get_registered_model("reverso-policy")
        assert model.aliases.get("challenger") == "1"
        tags = client.get_model_version("reverso-policy", "1").tags
        assert tags.get("promotion.decision") in {"promoted", "rejected"} and tags.get("promotion.reason")
        if tags["promotion.decision"] == "promoted":
            assert model.aliases.get("champion") == "1"
    finally:
        server.stop()
