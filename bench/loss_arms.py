"""Benchmark: the DPO family on one pair set — held-out curves of every loss, validation data only.

Trains each arm (a builder x loss x margin, as ``study.arms`` writes them) on the same pairs stage's
``rpo`` set with the train section of params.yaml, and records what the held-out pairs (the pairs
stage's eval split: sessions no arm trains on) say at every evaluation: the unshifted accuracy
(Delta > 0), the couple sum Delta_A + Delta_B in nats (0 = the model ignores the rule text), and the
held-out loss of the arm's own objective. No test suite is touched.

    .venv/bin/python bench/loss_arms.py --out bench/results/loss_arms.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from reverso.config import ArmSpec, load_params, with_arm
from reverso.machine import machine_info

ARMS = {
    "rpo": {"builder": "rpo", "loss": ["sigmoid"], "margin": "released"},
    "rpo_no_margin": {"builder": "rpo", "loss": ["sigmoid"], "margin": "none"},
    "rpo_paper_margin": {"builder": "rpo", "loss": ["sigmoid"], "margin": "paper"},
    "rpo_sft": {"builder": "rpo", "loss": ["sigmoid", {"type": "sft", "weight": 0.2}], "margin": "released"},
    "ipo_rpo": {"builder": "rpo", "loss": ["ipo"], "margin": "none"},
    "hinge_rpo": {"builder": "rpo", "loss": ["hinge"], "margin": "none"},
    "robust_rpo": {"builder": "rpo", "loss": ["robust"], "margin": "none", "label_smoothing": 0.1},
    "simpo_rpo": {"builder": "rpo", "loss": ["simpo"], "margin": "none", "beta": 2.0},
}


def curve(metrics: dict[str, Any], beta: float) -> list[dict[str, Any]]:
    return [{"step": r["step"], "accuracy": r.get("accuracy"), "pairs": r.get("pairs"), "couples": r.get("couples"),
             "couple_delta_sum": None if "couple_margin_sum" not in r else r["couple_margin_sum"] / beta,
             "couples_reading": r.get("couples_reading")} for r in metrics.get("rule_reading", {}).get("history", [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--pairs", type=Path, default=Path("data/pairs"))
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--arms", nargs="*", default=list(ARMS))
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results/loss_arms.json"))
    args = parser.parse_args()
    from reverso.train import train

    params = load_params(args.params, args.overrides)
    work = Path("/tmp/reverso-loss-arms")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result: dict[str, Any] = {"pairs": str(args.pairs), "overrides": args.overrides, "machine": machine_info(),
                              "train_pairs": sum(1 for _ in (args.pairs / "rpo/train.jsonl").open()),
                              "eval_pairs": sum(1 for _ in (args.pairs / "rpo/eval.jsonl").open()), "arms": {}}
    for name in args.arms:
        settings = with_arm(params.train, name, ArmSpec.model_validate(ARMS[name]))
        started = time.perf_counter()
        metrics = train(settings, params.registry, args.model, args.pairs, work / "models" / name,
                        work / "metrics" / f"{name}.json", work / "plots" / name, work, register=False,
                        ref_cache_dir=Path(".reverso/ref-cache"))
        result["arms"][name] = {"loss": metrics["loss"], "margin_mode": settings.margin_mode, "beta": settings.beta,
                                "steps": metrics["steps"], "regime": metrics["regime"],
                                "held_out_loss": {k: v.get("loss") for k, v in metrics.get("held_out", {}).items()},
                                "curve": curve(metrics, settings.beta),
                                "type_accuracy_after": metrics.get("rule_reading", {}).get("after", {}).get("type_accuracy"),
                                "wall_s": round(time.perf_counter() - started, 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # after every arm: a killed run keeps what it has
        print(name, json.dumps(result["arms"][name]["curve"][-1:]), flush=True)


if __name__ == "__main__":
    main()
