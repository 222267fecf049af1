"""Benchmark: the train stage's peak resident memory and step time, per setting, on the pipeline's own pairs.

Each setting trains a few steps in its own process (``reverso train`` with ``-S`` overrides, MLflow in
a throw-away SQLite store) and reports that process's peak RSS (sampled every 0.2 s) and its wall time. The reference log-probs are computed once per setting (a fresh cache
each), so ``wall_s`` covers model load, reference pass and the steps.

    .venv/bin/python bench/train_memory.py --pairs data/pairs --steps 4
    .venv/bin/python bench/train_memory.py --setting default= --setting checkpointing=train.gradient_checkpointing=true

Writes ``bench/results/train_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pipeline import tree_memory  # bench/pipeline.py

# tree_memory: RSS / PSS / largest process of a process tree, in MiB

REPO = Path(__file__).resolve().parents[1]

DEFAULT_SETTINGS = ["default=", "checkpointing=train.gradient_checkpointing=true"]


def run_setting(overrides: list[str], pairs: Path, model: Path, steps: int, work: Path) -> dict[str, float]:
    """Train ``steps`` steps in a child process; its peak RSS (sampled every 0.2 s) and wall time."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    command = [str(bin_dir / "reverso"), "train", "--params", str(REPO / "params.yaml"), "--model", str(model),
               "--pairs-dir", str(pairs), "--out", str(work / "policy"), "--metrics", str(work / "train.json"),
               "--plots", str(work / "plots"), "-S", f"train.max_steps={steps}", "-S", "train.save_steps=1000",
               *[flag for o in overrides for flag in ("-S", o)]]
    started = time.perf_counter()
    with open(work / "train.log", "w") as log:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        watched, peak = psutil.Process(process.pid), 0.0
        while process.poll() is None:
            peak = max(peak, tree_memory(watched)["peak_process_rss_mb"])
            time.sleep(0.2)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.stderr.write((work / "train.log").read_text()[-4000:])
        raise SystemExit(f"{' '.join(command)} failed with exit {process.returncode}")
    return {"peak_rss_mb": round(peak, 1), "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=Path("data/pairs"))
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--setting", action="append", default=None,
                        help="NAME=override[,override...] (default: default and gradient checkpointing)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_memory.json"))
    args = parser.parse_args()
    result: dict = {"pairs": str(args.pairs), "steps": args.steps, "cpu_count": os.cpu_count(), "settings": {}}
    for spec in args.setting or DEFAULT_SETTINGS:
        name, _, joined = spec.partition("=")
        overrides = [o for o in joined.split(",") if o]
        with tempfile.TemporaryDirectory(prefix="reverso-train-memory-") as tmp:
            figures = run_setting(overrides, args.pairs.resolve(), args.model.resolve(), args.steps, Path(tmp))
        result["settings"][name] = {"overrides": overrides, **figures}
        print(name, result["settings"][name], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
