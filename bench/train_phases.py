"""Probe: where the train process's resident memory goes, phase by phase.

Trains a few steps in this process on a pair folder, sampling RSS every 50 ms, and records the RSS
at each phase boundary (imports, model + trainer built, reference pass, each step, held-out eval,
model logged) and the peak since the previous boundary. Run it once per allocator setting:

    .venv/bin/python bench/train_phases.py --pairs data/pairs --steps 2 -S train.return_freed_memory=false
    .venv/bin/python bench/train_phases.py --pairs data/pairs --steps 2 --out bench/results/train_phases.json

Writes JSON: ``phases`` = [{"phase", "rss_mb", "peak_since_last_mb"}].
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil


class Phases:
    def __init__(self) -> None:
        self.process, self.peak, self.rows = psutil.Process(), 0, []
        self.lock = threading.Lock()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            rss = self.process.memory_info().rss
            with self.lock:
                self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def mark(self, phase: str) -> None:
        rss = self.process.memory_info().rss
        with self.lock:
            self.rows.append({"phase": phase, "rss_mb": round(rss / 2**20), "peak_since_last_mb":
                              round(max(self.peak, rss) / 2**20)})
            self.peak = 0
        print(self.rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=Path("data/pairs"))
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params override")
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_phases.json"))
    args = parser.parse_args()
    phases = Phases()
    phases.mark("start")
    import mlflow  # noqa: F401 - what the train process imports, measured as one phase
    import peft  # noqa: F401
    import torch  # noqa: F401
    import trl  # noqa: F401
    from transformers import TrainerCallback

    import reverso.train as stage
    from reverso.config import load_params

    phases.mark("imports")
    work = Path(tempfile.mkdtemp(prefix="reverso-train-phases-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"

    class Marks(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            phases.mark("model + trainer built (reference log-probs computed)")

        def on_step_end(self, _args: Any, state: Any, *__: Any, **___: Any) -> None:
            phases.mark(f"step {state.global_step}")

        def on_evaluate(self, *_: Any, **__: Any) -> None:
            phases.mark("held-out eval")

    build = stage._build_trainer

    def build_and_mark(*a: Any, **k: Any) -> Any:
        trainer = build(*a, **k)
        trainer.add_callback(Marks())
        return trainer

    stage._build_trainer = build_and_mark
    params = load_params("params.yaml", [f"train.max_steps={args.steps}", "train.save_steps=1000", *args.overrides])
    stage.train(params.train, params.registry, args.model, args.pairs, work / "policy", work / "train.json",
                work / "plots", workspace=str(work))
    phases.mark("adapter saved and logged to MLflow")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pairs": str(args.pairs), "steps": args.steps, "overrides": args.overrides,
                                    "phases": phases.rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
