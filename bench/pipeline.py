"""Benchmark: the default pipeline from clean outputs — wall time and peak resident memory, per stage.

Runs ``reverso pipeline`` (the same Prefect flow over DVC stages as ``make run``) in a fresh copy of
the repository (tracked files only, so no outputs and no caches) and samples the resident set size
of the whole process tree every 0.3 s. Stage boundaries come from DVC's "Running stage" lines.
Writes ``bench/results/pipeline.json`` with ``wall_s``, ``peak_rss_mb`` and the same two per stage.
Run with no overrides, it is also the committed reference run: ``dvc.lock`` and the pipeline's committed
outputs (metrics/, plots/, reports/ as git tracks them, the study's and the loop's left alone) are copied
back from the same run, so the figures and the reference come from one run of the current defaults.

Three memory figures, because a sum of RSS over a process tree counts every shared page (the torch
libraries each Python process maps, the model file two processes map) once per process:
``peak_rss_mb`` (sum of RSS, an upper bound), ``peak_pss_mb`` (sum of PSS: shared pages divided
among the processes sharing them, what the tree really occupies) and ``peak_process_rss_mb`` (the
largest single process).

    .venv/bin/python bench/pipeline.py                       # or: make bench-pipeline
    .venv/bin/python bench/pipeline.py -S collect.sessions=4  # any params override (no reference copied back)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from reverso.machine import machine_info

REPO = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"Running stage '([^']+)'")


def copy_tracked(target: Path) -> None:
    """A clean workspace: the repository's tracked and untracked-not-ignored files, outputs excluded."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in names:
        source = REPO / name
        if source.is_file() and not name.startswith(("models/", "metrics/", "plots/", "reports/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=target, check=True, capture_output=True)


FIGURES = ("peak_rss_mb", "peak_pss_mb", "peak_process_rss_mb")
# Committed outputs that belong to the study or the loop, not to the pipeline's reference run.
NOT_REFERENCE = ("reports/study/", "reports/search/", "reports/improve", "metrics/study", "metrics/improve",
                 "plots/improve")


def copy_reference(workspace: Path) -> list[str]:
    """The run's dvc.lock and the outputs git tracks under metrics/, plots/, reports/ -> the repository."""
    tracked = subprocess.run(["git", "ls-files", "metrics", "plots", "reports"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    produced = [str(path.relative_to(workspace)) for folder in ("metrics", "plots", "reports")
                for path in (workspace / folder).rglob("*") if path.is_file()]
    names = ["dvc.lock"] + sorted(name for name in set(tracked) | set(produced)
                                  if not name.startswith(NOT_REFERENCE) and (workspace / name).is_file()
                                  and (name in tracked or not _ignored(name)))
    for name in names:
        (REPO / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(workspace / name, REPO / name)
    return names


def _ignored(name: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, check=False).returncode == 0


def tree_memory(process: psutil.Process) -> dict[str, float]:
    """Sum of RSS, sum of PSS and the largest RSS over the process tree, in MiB."""
    rss = pss = largest = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        largest = max(largest, info.rss)
    return {"peak_rss_mb": rss / 2**20, "peak_pss_mb": pss / 2**20, "peak_process_rss_mb": largest / 2**20}


def _entry() -> dict[str, float]:
    return {"wall_s": 0.0, **dict.fromkeys(FIGURES, 0.0)}


def run(overrides: list[str], workspace: Path) -> dict:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(bin_dir / "reverso"), "pipeline", *sum((["-S", o] for o in overrides), [])]
    stages: dict[str, dict[str, float]] = {}
    current = {"name": "startup", "since": time.perf_counter()}
    peak = _entry()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    watched = psutil.Process(process.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            memory = tree_memory(watched)
            entry = stages.setdefault(current["name"], _entry())
            for key, value in memory.items():
                peak[key] = max(peak[key], value)
                entry[key] = max(entry[key], value)
            time.sleep(0.3)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        found = STAGE_LINE.search(line)
        if found:
            now = time.perf_counter()
            stages.setdefault(current["name"], _entry())["wall_s"] += now - current["since"]
            current.update(name=found.group(1), since=now)
    code = process.wait()
    done.set()
    sampler.join()
    stages.setdefault(current["name"], _entry())["wall_s"] += time.perf_counter() - current["since"]
    if code != 0:
        sys.stderr.write("".join(log[-60:]))
        raise SystemExit(f"reverso pipeline failed with exit {code}")
    return {"wall_s": round(time.perf_counter() - started, 1), **{k: round(peak[k], 1) for k in FIGURES},
            "stages": {k: {f: round(x, 1) for f, x in v.items()} for k, v in stages.items()},
            "overrides": overrides, "cpu_count": os.cpu_count(), **machine_info()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params override")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/pipeline.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="reverso-bench-pipeline-"))
    try:
        copy_tracked(workspace)
        result = run(args.overrides, workspace)
        if not args.overrides:
            result["reference_files"] = len(copy_reference(workspace))
    finally:
        if args.keep:
            print(f"workspace kept: {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
