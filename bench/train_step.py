"""Benchmark: RPO trainer step vs stock TRL DPOTrainer step, same model, data and settings.

Steps of the two trainers are interleaved in one run (these machines are shared and noisy), with
and without precomputed reference log-probs. Writes JSON with per-config median step time, the
RPO/DPO ratio (target <= 1.05), tokens/s and peak memory.

    .venv/bin/python bench/train_step.py --model models/base --steps 6 --out bench/results/train_step.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reverso.config import TrainParams
from reverso.train import _build_trainer


def make_pairs(n: int) -> list[dict[str, Any]]:
    topics = ["rivers", "bread", "chess", "volcanoes", "jazz", "gardens", "robots", "tides"]
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        rows.append({
            "prompt": [{"role": "system", "content": "You are helpful.\n\nFollow these rules in every reply:\n"
                        "1. Answer with less than 40 words.\n2. Do not use any commas."},
                       {"role": "user", "content": f"Tell me something about {topic}."}],
            "chosen": [{"role": "assistant", "content": f"{topic.title()} are interesting because they change "
                        "over time and people study them closely for many reasons."}],
            "rejected": [{"role": "assistant", "content": f"Well, {topic}, as you may know, are, in many ways, "
                          "a fascinating subject, with history, science, and culture all mixed together."}],
            "margin": 1 + i % 4,
        })
    return rows


def build(kind: str, precompute: bool, model_dir: Path, data: Any, work: Path, batch_size: int) -> Any:
    params = TrainParams(batch_size=batch_size, precompute_ref_log_probs=precompute, max_length=256,
                         gamma=0.05 if kind == "rpo" else 0.0)
    trainer = _build_trainer(params, model_dir, data if kind == "rpo" else data.remove_columns("margin"), None,
                             work / f"{kind}-{precompute}")
    if kind == "dpo":  # stock TRL: the parent class's loss, default collator
        from trl import DPOTrainer
        from trl.trainer.dpo_trainer import DataCollatorForPreference

        trainer.__class__ = DPOTrainer
        trainer.data_collator = DataCollatorForPreference(pad_token_id=trainer.processing_class.pad_token_id,
                                                          max_length=256)
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # set by train(); we drive steps by hand
    return trainer


def step_time(trainer: Any, batch: dict[str, Any]) -> float:
    trainer.model.train()
    started = time.perf_counter()
    trainer.training_step(trainer.model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_step.json"))
    args = parser.parse_args()
    from datasets import Dataset

    data = Dataset.from_list(make_pairs(args.batch_size * 4))
    work = Path("/tmp/reverso-bench-train")
    configs = [(kind, pre) for pre in (True, False) for kind in ("dpo", "rpo")]
    trainers = {c: build(*c, args.model, data, work, args.batch_size) for c in configs}
    batches = {c: [t._prepare_inputs(b) for b in t.get_train_dataloader()] for c, t in trainers.items()}
    tokens = {c: sum(int(b["attention_mask"].sum()) for b in bs) / len(bs) for c, bs in batches.items()}
    times: dict[tuple[str, bool], list[float]] = {c: [] for c in configs}
    for c in configs:  # warm-up
        step_time(trainers[c], batches[c][0])
    for step in range(args.steps):  # interleaved
        for c in configs:
            times[c].append(step_time(trainers[c], batches[c][step % len(batches[c])]))
    result: dict[str, Any] = {"model": str(args.model), "steps": args.steps, "batch_size": args.batch_size,
                              "device": "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}",
                              "machine": platform.machine(), "configs": {}}
    for kind, pre in configs:
        median = statistics.median(times[(kind, pre)])
        result["configs"][f"{kind}{'_cached_ref' if pre else ''}"] = {
            "median_step_s": round(median, 4), "tokens_per_s": round(tokens[(kind, pre)] / median, 1)}
    cfg = result["configs"]
    result["ratio_rpo_over_dpo"] = round(cfg["rpo"]["median_step_s"] / cfg["dpo"]["median_step_s"], 3)
    result["ratio_rpo_over_dpo_cached_ref"] = round(
        cfg["rpo_cached_ref"]["median_step_s"] / cfg["dpo_cached_ref"]["median_step_s"], 3)
    result["speedup_from_cached_ref"] = round(cfg["rpo"]["median_step_s"] / cfg["rpo_cached_ref"]["median_step_s"], 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
