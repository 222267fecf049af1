"""Carrying an unfinished study or improve campaign to a new machine (reverso.progress): pack, wipe, unpack,
DVC skips what finished."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from reverso.io import DataError
from reverso.progress import pack, read_manifest, unpack

DVC = str(Path(sys.executable).parent / "dvc")
# A two-item study pipeline in the shape of study/dvc.yaml: a cached directory output, a cached file
# output and an uncached report, as study-collect / study-pairs / study-train / study-evaluate write them.
PIPELINE = """\
stages:
  study-train:
    wdir: ..
    cmd: mkdir -p models/study/rpo-1 && echo adapter > models/study/rpo-1/adapter.bin && echo pairs > data/study.txt
    deps: [input.txt]
    outs:
      - models/study/rpo-1
      - data/study.txt
  study-evaluate:
    wdir: ..
    cmd: mkdir -p reports/study/eval && cat models/study/rpo-1/adapter.bin > reports/study/eval/rpo-1.json
    deps: [models/study/rpo-1]
    outs:
      - reports/study/eval/rpo-1.json:
          cache: false
"""


def git(workspace: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=workspace, check=True,
                   capture_output=True)


def fresh_repo(workspace: Path) -> None:
    """The clone a new machine starts from: tracked files only (no outputs, no DVC cache)."""
    workspace.mkdir(parents=True)
    git(workspace, "init", "-q")
    subprocess.run([DVC, "init", "-q"], cwd=workspace, check=True)
    (workspace / "study").mkdir()
    (workspace / "study/dvc.yaml").write_text(PIPELINE)
    (workspace / "data").mkdir()
    (workspace / "input.txt").write_text("x\n")
    (workspace / "params.yaml").write_text("study: {name: toy}\n")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-qm", "init")


def repro(workspace: Path) -> str:
    found = subprocess.run([DVC, "repro", "study/dvc.yaml"], cwd=workspace, capture_output=True, text=True, check=True)
    return found.stdout


def test_a_packed_study_resumes_on_a_fresh_clone_without_rerunning(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    assert "Running stage 'study/dvc.yaml:study-train'" in repro(workspace)
    (workspace / "mlflow.db").write_bytes(b"runs")  # the MLflow store travels with the outputs
    archive = tmp_path / "progress.tar.gz"
    manifest = pack(workspace, archive, "study")
    assert manifest["items"] == ["study-evaluate", "study-train"] and manifest["workspace"] == str(workspace)
    assert manifest["machine"]["cpu_flags"] is not None and len(manifest["commit"]) == 40
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not any(n.startswith(("models/", "data/")) for n in names)  # cached outputs travel as DVC objects
    assert sum(n.startswith(".dvc/cache/files/md5/") for n in names) == 3  # dir listing, adapter, pairs file

    shutil.rmtree(workspace)  # a new machine: the same commit, checked out at the same path
    fresh_repo(workspace)
    assert not (workspace / "models/study/rpo-1").exists()
    restored, notes = unpack(archive, workspace)
    assert restored["items"] == manifest["items"]
    assert notes and "items whose code changed since will rerun" in notes[0]  # another commit (a new git init)
    assert (workspace / "models/study/rpo-1/adapter.bin").read_text() == "adapter\n"
    assert (workspace / "mlflow.db").read_bytes() == b"runs"
    assert "Running stage" not in repro(workspace)  # both items skipped: outputs, cache and lock agree


def test_a_study_packed_halfway_unpacks_and_runs_only_the_rest(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    (workspace / "study/dvc.yaml").write_text(PIPELINE.replace("- reports/study/eval/rpo-1.json:\n          cache: false",
                                                                "- reports/study/eval/rpo-1.json"))  # a cached output
    subprocess.run([DVC, "repro", "--single-item", "study/dvc.yaml:study-train"], cwd=workspace, check=True,
                   capture_output=True)
    archive = tmp_path / "progress.tar.gz"
    assert pack(workspace, archive, "study")["items"] == ["study-train"]
    shutil.rmtree(workspace)
    fresh_repo(workspace)
    (workspace / "study/dvc.yaml").write_text(PIPELINE.replace("- reports/study/eval/rpo-1.json:\n          cache: false",
                                                                "- reports/study/eval/rpo-1.json"))
    unpack(archive, workspace)  # the unfinished item has no outputs to check out, and that is no error
    ran = repro(workspace)
    assert "Running stage 'study/dvc.yaml:study-evaluate'" in ran and "study-train'" not in ran.split("Running")[-1]


def test_lock_entries_without_outputs_here_are_not_packed(tmp_path: Path) -> None:
    """A lock that came with the checkout (a committed record of another run) names items that never ran here:
    pack leaves them out, so unpack does not try to check out outputs nobody has."""
    import yaml

    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    repro(workspace)
    lock = workspace / "study/dvc.lock"
    recorded = yaml.safe_load(lock.read_text())
    stale = dict(recorded["stages"]["study-train"])
    stale["outs"] = [{"path": "models/study/rpo-3", "md5": "0" * 32 + ".dir", "hash": "md5"}]
    recorded["stages"]["study-train@rpo-3"] = stale
    lock.write_text(yaml.safe_dump(recorded))
    archive = tmp_path / "progress.tar.gz"
    assert pack(workspace, archive, "study")["items"] == ["study-evaluate", "study-train"]
    shutil.rmtree(workspace)
    fresh_repo(workspace)
    unpack(archive, workspace)
    assert (workspace / "models/study/rpo-1/adapter.bin").read_text() == "adapter\n"


def test_an_item_with_outputs_over_the_limit_stays_behind_and_its_report_travels(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    pipeline = PIPELINE.replace("echo adapter > models/study/rpo-1/adapter.bin",  # a 3 MB model, small reports
                                "head -c 3000000 /dev/zero > models/study/rpo-1/adapter.bin && mkdir -p "
                                "reports/study/train && echo 12 steps > reports/study/train/rpo-1.json").replace(
        "      - data/study.txt\n", "      - data/study.txt\n      - reports/study/train/rpo-1.json:\n"
        "          cache: false\n").replace("cat models/study/rpo-1/adapter.bin >", "wc -c < models/study/rpo-1/adapter.bin >")
    (workspace / "study/dvc.yaml").write_text(pipeline)
    repro(workspace)
    archive = tmp_path / "progress.tar.gz"
    manifest = pack(workspace, archive, "study", max_output_mb=1.0)
    assert manifest["items"] == ["study-evaluate"] and manifest["left_out"] == {"study-train": 2.9}
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not any(n.startswith(".dvc/cache/") or n.startswith("models/") for n in names)  # nothing of the model
    assert {"reports/study/eval/rpo-1.json", "reports/study/train/rpo-1.json", "study/dvc.lock"} <= set(names)
    shutil.rmtree(workspace)
    fresh_repo(workspace)
    (workspace / "study/dvc.yaml").write_text(pipeline)
    unpack(archive, workspace)  # the left-out item is not checked out: no error for its missing objects
    assert (workspace / "reports/study/eval/rpo-1.json").read_text().strip() == "3000000"
    assert (workspace / "reports/study/train/rpo-1.json").read_text() == "12 steps\n"  # the left-out item's report
    assert not (workspace / "models/study/rpo-1").exists()
    assert pack(workspace, tmp_path / "none.tar.gz", "study")["left_out"] == {}  # no limit: nothing left out
    named = pack(workspace, tmp_path / "named.tar.gz", "study", leave_out=("study-evaluate",))  # left out by name
    assert named["items"] == [] and set(named["left_out"]) == {"study-evaluate"}
    with tarfile.open(tmp_path / "named.tar.gz") as tar:
        assert "reports/study/eval/rpo-1.json" in tar.getnames()  # its report still travels
    with pytest.raises(DataError, match="study-train@rpo-9: not a finished item here"):
        pack(workspace, tmp_path / "typo.tar.gz", "study", leave_out=("study-train@rpo-9",))


def test_an_uncached_report_travels_as_a_file_even_when_its_bytes_equal_a_cached_output(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    pipeline = PIPELINE.replace(  # a matrix item whose cache: false report holds the bytes of the cached data/study.txt
        "  study-evaluate:\n    wdir: ..\n", "  study-evaluate:\n    wdir: ..\n    matrix:\n      seed: [1]\n").replace(
        "cat models/study/rpo-1/adapter.bin > reports/study/eval/rpo-1.json", "cat data/study.txt > reports/study/eval/rpo-${item.seed}.json").replace(
        "      - reports/study/eval/rpo-1.json:", "      - reports/study/eval/rpo-${item.seed}.json:")
    (workspace / "study/dvc.yaml").write_text(pipeline)
    repro(workspace)
    archive = tmp_path / "progress.tar.gz"
    assert pack(workspace, archive, "study")["items"] == ["study-evaluate@1", "study-train"]
    with tarfile.open(archive) as tar:
        assert "reports/study/eval/rpo-1.json" in tar.getnames()
    shutil.rmtree(workspace)
    fresh_repo(workspace)
    (workspace / "study/dvc.yaml").write_text(pipeline)
    unpack(archive, workspace)
    assert (workspace / "reports/study/eval/rpo-1.json").read_text() == "pairs\n"


def test_the_datasets_map_caches_stay_behind_and_the_sets_and_reference_log_probs_travel(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    repro(workspace)
    dataset = workspace / ".reverso/ref-cache/pairs-v2-abc"
    dataset.mkdir(parents=True)
    for name in ("data-00000-of-00001.arrow", "state.json", "cache-0123abcd.arrow", "ref-logps-k.json"):
        (dataset / name).write_text(name)
    archive = tmp_path / "progress.tar.gz"
    pack(workspace, archive, "study")
    with tarfile.open(archive) as tar:
        names = {n.removeprefix(".reverso/ref-cache/pairs-v2-abc/") for n in tar.getnames()}
    assert {"data-00000-of-00001.arrow", "state.json", "ref-logps-k.json"} <= names
    assert "cache-0123abcd.arrow" not in names


def test_unpack_refuses_another_path_and_members_outside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    repro(workspace)
    archive = tmp_path / "progress.tar.gz"
    pack(workspace, archive, "study")
    elsewhere = tmp_path / "other"
    fresh_repo(elsewhere)
    with pytest.raises(ValueError, match=f"packed in {workspace}.*git worktree add {workspace}"):
        unpack(archive, elsewhere)

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name, data in (("progress.json", json.dumps(read_manifest(archive)).encode()), ("../escape", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="refusing member '../escape'"):
        unpack(evil, workspace)
    assert not (tmp_path / "escape").exists()


def test_pack_says_when_nothing_finished(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    with pytest.raises(FileNotFoundError, match="no finished study item to pack"):
        pack(workspace, tmp_path / "progress.tar.gz", "study")
    assert not (tmp_path / "progress.tar.gz").exists()


IMPROVE = """\
stages:
  improve-train:
    wdir: ..
    cmd: mkdir -p improve/round-1/adapter && echo a > improve/round-1/adapter/w.bin && echo '{}' > improve/round-1/decision.json
    deps: [input.txt]
    outs:
      - improve/round-1/adapter
      - improve/round-1/decision.json:
          cache: false
"""


def test_an_improve_campaign_packs_its_rounds_and_not_older_archives(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fresh_repo(workspace)
    (workspace / "improve").mkdir()
    (workspace / "improve/dvc.yaml").write_text(IMPROVE)
    subprocess.run([DVC, "repro", "improve/dvc.yaml"], cwd=workspace, check=True, capture_output=True)
    (workspace / "improve/progress").mkdir()
    (workspace / "improve/progress/old.tar.gz").write_bytes(b"an earlier archive")
    archive = workspace / "improve/progress/campaign.tar.gz"
    manifest = pack(workspace, archive, "improve")
    assert manifest["pipeline"] == "improve" and manifest["items"] == ["improve-train"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "improve/round-1/decision.json" in names and "improve/dvc.lock" in names
    assert not any(n.startswith(("improve/progress", "improve/round-1/adapter")) for n in names)

    moved = tmp_path / "campaign.tar.gz"
    shutil.move(archive, moved)
    shutil.rmtree(workspace)
    fresh_repo(workspace)
    (workspace / "improve").mkdir()
    (workspace / "improve/dvc.yaml").write_text(IMPROVE)
    unpack(moved, workspace)
    assert (workspace / "improve/round-1/adapter/w.bin").read_text() == "a\n"
    again = subprocess.run([DVC, "repro", "improve/dvc.yaml"], cwd=workspace, capture_output=True, text=True, check=True)
    assert "Running stage" not in again.stdout


def test_the_cli_says_what_is_wrong_with_an_archive_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reverso.cli import app

    bogus = tmp_path / "notes.tar.gz"
    bogus.write_text("not an archive")
    result = CliRunner().invoke(app, ["study", "unpack", str(bogus), "--workspace", str(tmp_path)])
    assert result.exit_code == 1 and "not a progress archive written by `pack`" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["improve", "pack", "--workspace", str(tmp_path)])
    assert result.exit_code == 1 and "no finished improve item to pack" in result.output
