"""Benchmark: RPO trainer step vs stock TRL DPOTrainer step, same model, data and settings.

Steps of the two trainers are interleaved in one run (these machines are shared and noisy), with
and without precomputed reference log-probs. Writes JSON with per-config median step time, the
RPO/DPO ratio (target <= 1.05), tokens/s and peak memory; on a GPU also the model FLOP utilisation
(MFU: FLOPs the step executes / the card's dense bf16 peak; LoRA skips weight gradients of the frozen
base, so a step is policy forward + input-gradient backward (4N per token) + the reference forward
(2N) unless it is cached).

    .venv/bin/python bench/train_step.py --model models/base --steps 6 --out bench/results/train_step.json
    python3 bench/train_step.py --shape 1b --tokenizer .gpu/tokenizer --bf16 --batch-size 8 \
        --response-words 300 --max-length 1024 --out bench/results/train_step_gpu.json   # random-init, GPU
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

import random_model
import torch

from reverso.config import TrainParams
from reverso.train import _build_trainer

# dense bf16 peak of the card, TFLOP/s (vendor figure, no sparsity); MFU is left out for unknown cards
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


def make_pairs(n: int, response_words: int = 0) -> list[dict[str, Any]]:
    topics = ["rivers", "bread", "chess", "volcanoes", "jazz", "gardens", "robots", "tides"]
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        filler = "".join(f" {topic} {k}" for k in range(response_words // 2))  # longer sequences for GPU runs
        rows.append({
            "prompt": [{"role": "system", "content": "You are helpful.\n\nFollow these rules in every reply:\n"
                        "1. Answer with less than 40 words.\n2. Do not use any commas."},
                       {"role": "user", "content": f"Tell me something about {topic}."}],
            "chosen": [{"role": "assistant", "content": f"{topic.title()} are interesting because they change "
                        "over time and people study them closely for many reasons." + filler}],
            "rejected": [{"role": "assistant", "content": f"Well, {topic}, as you may know, are, in many ways, "
                          "a fascinating subject, with history, science, and culture all mixed together." + filler}],
            "margin": 1 + i % 4,
        })
    return rows


def build(kind: str, precompute: bool, model_dir: Path, data: Any, work: Path, batch_size: int,
          max_length: int = 256, bf16: bool = False) -> Any:
    params = TrainParams(batch_size=batch_size, precompute_ref_log_probs=precompute, max_length=max_length,
                         gamma=0.05 if kind == "rpo" else 0.0, bf16=bf16)
    trainer = _build_trainer(params, model_dir, data if kind == "rpo" else data.remove_columns("margin"), None,
                             work / f"{kind}-{precompute}")
    if kind == "dpo":  # stock TRL: the parent class's loss, default collator
        from trl import DPOTrainer
        from trl.trainer.dpo_trainer import DataCollatorForPreference

        trainer.__class__ = DPOTrainer
        trainer.data_collator = DataCollatorForPreference(pad_token_id=trainer.processing_class.pad_token_id,
                                                          max_length=max_length)
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
    parser.add_argument("--shape", choices=sorted(random_model.SHAPES),
                        help="random-init Llama of this shape instead of --model (tokenizer from --tokenizer)")
    parser.add_argument("--tokenizer", type=Path, default=Path("models/base"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--response-words", type=int, default=0, help="pad each response by this many words")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_step.json"))
    args = parser.parse_args()
    from datasets import Dataset

    data = Dataset.from_list(make_pairs(args.batch_size * 4, args.response_words))
    work = Path("/tmp/reverso-bench-train")
    if args.shape:
        args.model = random_model.build(args.shape, args.tokenizer, work / f"model-{args.shape}")
    configs = [(kind, pre) for pre in (True, False) for kind in ("dpo", "rpo")]
    trainers = {c: build(*c, args.model, data, work, args.batch_size, args.max_length, args.bf16) for c in configs}
    batches = {c: [t._prepare_inputs(b) for b in t.get_train_dataloader()] for c, t in trainers.items()}
    tokens = {c: sum(int(b["attention_mask"].sum()) for b in bs) / len(bs) for c, bs in batches.items()}
    times: dict[tuple[str, bool], list[float]] = {c: [] for c in configs}
    for c in configs:  # warm-up
        step_time(trainers[c], batches[c][0])
    for step in range(args.steps):  # interleaved
        for c in configs:
            times[c].append(step_time(trainers[c], batches[c][step % len(batches[c])]))
    cuda = torch.cuda.is_available()
    config = trainers[configs[0]].model.config
    result: dict[str, Any] = {"model": args.shape or str(args.model), "steps": args.steps,
                              "batch_size": args.batch_size, "max_length": args.max_length, "bf16": args.bf16,
                              "matmul_params": random_model.matmul_params(config),
                              "device": torch.cuda.get_device_name(0) if cuda else f"cpu x{torch.get_num_threads()}",
                              "machine": platform.machine(), "configs": {}}
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if cuda and k in torch.cuda.get_device_name(0)), None)
    for kind, pre in configs:
        median = statistics.median(times[(kind, pre)])
        row = {"median_step_s": round(median, 4), "tokens_per_s": round(tokens[(kind, pre)] / median, 1),
               "tokens_per_step": round(tokens[(kind, pre)], 1)}
        if peak:
            seq = tokens[(kind, pre)] / (2 * args.batch_size)  # chosen + rejected rows per pair
            forward = random_model.forward_flops_per_token(config, int(seq))
            executed = forward * (2 if pre else 3)  # forward + input-grad backward (+ reference forward)
            row["mfu"] = round(executed * tokens[(kind, pre)] / median / (peak * 1e12), 4)
        result["configs"][f"{kind}{'_cached_ref' if pre else ''}"] = row
    cfg = result["configs"]
    result["ratio_rpo_over_dpo"] = round(cfg["rpo"]["median_step_s"] / cfg["dpo"]["median_step_s"], 3)
    result["ratio_rpo_over_dpo_cached_ref"] = round(
        cfg["rpo_cached_ref"]["median_step_s"] / cfg["dpo_cached_ref"]["median_step_s"], 3)
    result["speedup_from_cached_ref"] = round(cfg["rpo"]["median_step_s"] / cfg["rpo_cached_ref"]["median_step_s"], 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if cuda:
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result["peak_bf16_tflops_spec"] = peak
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
