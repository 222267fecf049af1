"""Benchmark: training throughput of the train stage's settings, and every loss against stock TRL DPO.

Part 1 (throughput): the same pairs (a pair file of a real run, default data/pairs/rpo/train.jsonl)
trained one epoch per config, configs interleaved micro-batch by micro-batch in one run (these
machines are shared and noisy; interleaving whole epochs lets a neighbour's load land on one
config). Reported per config: real (non-padding) tokens per second of training, pairs per
hour, padding share, and the loss on the first batch (the numerics check: bf16 against fp32 on the
same weights and batch). "today" is the baseline config (fp32, gradient checkpointing, one pair per
micro-batch, TRL's stock forward); each config's ratio to it (``speedup_vs_today``) is the figure
reported. ``forward`` is ``train.forward`` (reverso.train.forward): ``completion_head`` scores
the LM head on reply positions only, ``shared_prompt`` packs each pair into one row whose prompt is
computed once for both replies.

Part 2 (losses): each ``train.loss`` (with the RPO margin where it composes) against stock TRL
DPOTrainer's sigmoid loss on the same batches, step times interleaved; target ratio <= 1.05. Our
losses run with ``--forward`` (default: the TrainParams default), stock DPO with TRL's forward.

Part 3 (reference): the reference pass (no grad, adapter off) per ``train.forward``, pair by pair
interleaved, and the largest difference of its per-pair log-probs from the stock forward's.

Reference log-probs are precomputed (cached) in every config, as the train stage does.

    .venv/bin/python bench/train_step.py --pairs data/pairs/rpo/train.jsonl --out bench/results/train_step.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reverso.config import TrainParams
from reverso.machine import machine_info
from reverso.train.run import _build_trainer, use_bf16

# label -> train overrides; "today" is the baseline every config is compared with (the label and
# ``speedup_vs_today`` keep the result file's keys)
TODAY = {"bf16": False, "gradient_checkpointing": True, "batch_size": 1, "group_by_length": False, "forward": "stock"}
THROUGHPUT = {
    "today": TODAY,
    "completion_head": TODAY | {"forward": "completion_head"},
    "shared_prompt": TODAY | {"forward": "shared_prompt"},
    "shared_prompt_no_checkpointing": TODAY | {"forward": "shared_prompt", "gradient_checkpointing": False},
    "bf16": TODAY | {"bf16": True},
    "bf16_shared_prompt": TODAY | {"bf16": True, "forward": "shared_prompt"},
    "bf16_shared_prompt_no_checkpointing": TODAY | {"bf16": True, "forward": "shared_prompt",
                                                    "gradient_checkpointing": False},
}
LOSSES = {
    "sigmoid+margin": {"loss": ["sigmoid"], "margin_mode": "released"},
    "ipo+margin": {"loss": ["ipo"], "margin_mode": "released"},
    "hinge+margin": {"loss": ["hinge"], "margin_mode": "released"},
    "robust+margin": {"loss": ["robust"], "margin_mode": "released", "label_smoothing": 0.1},
    "sigmoid+0.2sft+margin": {"loss": ["sigmoid", {"type": "sft", "weight": 0.2}], "margin_mode": "released"},
    "simpo": {"loss": ["simpo"], "margin_mode": "none", "beta": 2.0},
}


def load_pairs(path: Path, limit: int) -> Any:
    from datasets import Dataset

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:limit]
    return Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                               "margin": r["margin"], "pair_index": i} for i, r in enumerate(rows)])


def build(settings: dict[str, Any], model_dir: Path, data: Any, work: Path, cache: Path, max_length: int) -> Any:
    params = TrainParams(**{"precompute_ref_log_probs": True, "max_length": max_length, "seed": 42,
                            "gradient_accumulation_steps": 1, **settings})
    trainer = _build_trainer(params, model_dir, data, None, work, ref_cache_dir=cache)
    # as Trainer.train() does: accelerate wraps the forward in bf16 autocast when bf16 is on (without
    # this, training_step runs fp32 whatever the setting, and only the reference pass is bf16)
    trainer.model = trainer.accelerator.prepare_model(trainer.model)
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # set by train(); we drive steps by hand
    return trainer


def stock_dpo(trainer: Any) -> Any:
    """The same trainer as TRL's own DPOTrainer: parent loss, parent collator."""
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    trainer.__class__ = DPOTrainer
    trainer.data_collator = DataCollatorForPreference(pad_token_id=trainer.processing_class.pad_token_id,
                                                      max_length=trainer.args.max_length)
    return trainer


def step(trainer: Any, batch: dict[str, Any]) -> tuple[float, float]:
    trainer.model.train()
    started = time.perf_counter()
    loss = trainer.training_step(trainer.model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    return time.perf_counter() - started, float(loss)


def throughput(args: argparse.Namespace, data: Any, work: Path, cache: Path) -> dict[str, Any]:
    chosen = {label: s for label, s in THROUGHPUT.items() if args.only is None or label in {"today", *args.only}}
    trainers = {label: build(s, args.model, data, work / label, cache, args.max_length) for label, s in chosen.items()}
    batches = {label: [t._prepare_inputs(b) for b in t.get_train_dataloader()] for label, t in trainers.items()}
    seconds = dict.fromkeys(trainers, 0.0)
    first_loss: dict[str, float] = {}
    for label, trainer in trainers.items():  # warm-up (not timed)
        step(trainer, batches[label][0])
    for _ in range(args.rounds):  # round robin, one micro-batch per config at a time: load hits all alike
        for index in range(max(len(b) for b in batches.values())):
            for label, trainer in trainers.items():
                if index < len(batches[label]):
                    seconds[label] += step(trainer, batches[label][index])[0]
                    print(f"throughput {label} batch {index}: {seconds[label]:.1f} s so far", flush=True)
    for label, trainer in trainers.items():  # the numerics check on the starting weights
        fresh = build(THROUGHPUT[label] | {"batch_size": 1, "group_by_length": False}, args.model, data,
                      work / f"{label}-fresh", cache, args.max_length)
        with torch.no_grad():
            first_loss[label] = float(fresh.compute_loss(fresh.model, dict(
                fresh._prepare_inputs(next(iter(fresh.get_train_dataloader()))))))
        del fresh
    configs = {}
    for label in trainers:
        real = sum(int(b["attention_mask"].sum()) for b in batches[label]) * args.rounds
        total = sum(b["attention_mask"].numel() for b in batches[label]) * args.rounds
        configs[label] = {"settings": chosen[label], "tokens_per_s": round(real / seconds[label], 1),
                          "pairs_per_hour": round(len(data) * args.rounds / seconds[label] * 3600, 1),
                          "padding_share": round(1 - real / total, 4), "seconds": round(seconds[label], 1),
                          "first_batch_loss": round(first_loss[label], 6)}
    base = configs["today"]["tokens_per_s"]
    for row in configs.values():
        row["speedup_vs_today"] = round(row["tokens_per_s"] / base, 3)
    return configs


def losses(args: argparse.Namespace, data: Any, work: Path, cache: Path) -> dict[str, Any]:
    common = {"bf16": args.bf16, "gradient_checkpointing": False, "batch_size": 1, "group_by_length": False,
              "forward": args.forward}
    # stock TRL DPO: TRL's trainer, hence TRL's forward whatever train.forward says
    trainers = {"stock_dpo": stock_dpo(build(common | {"margin_mode": "none", "forward": "stock"}, args.model,
                                             data.remove_columns(["margin", "pair_index"]), work / "stock", cache,
                                             args.max_length))}
    trainers |= {label: build(common | s, args.model, data, work / label, cache, args.max_length)
                 for label, s in LOSSES.items()}
    batches = {label: [t._prepare_inputs(b) for b in t.get_train_dataloader()][: args.loss_steps]
               for label, t in trainers.items()}
    times: dict[str, list[float]] = {label: [] for label in trainers}
    for label, trainer in trainers.items():
        step(trainer, batches[label][0])
    for index in range(args.loss_steps):
        for label, trainer in trainers.items():
            times[label].append(step(trainer, batches[label][index % len(batches[label])])[0])
            print(f"losses {label} step {index}: {times[label][-1]:.1f} s", flush=True)
    stock = statistics.median(times["stock_dpo"])
    return {label: {"median_step_s": round(statistics.median(t), 4),
                    "ratio_vs_stock_dpo": round(statistics.median(t) / stock, 3)} for label, t in times.items()}


def reference(args: argparse.Namespace, data: Any, work: Path, cache: Path) -> dict[str, Any]:
    """The reference pass (no grad, adapter off) per ``train.forward``, interleaved pair by pair."""
    forwards = ("stock", "completion_head", "shared_prompt")
    trainers = {f: build(TODAY | {"forward": f, "gradient_checkpointing": False}, args.model, data, work / f"ref-{f}",
                         cache, args.max_length) for f in forwards}
    batches = {f: [t._prepare_inputs(b) for b in t.get_train_dataloader()] for f, t in trainers.items()}
    seconds, logps = dict.fromkeys(forwards, 0.0), {f: [] for f in forwards}
    for index in range(len(batches["stock"])):
        for label, trainer in trainers.items():
            trainer.model.eval()
            started = time.perf_counter()
            chosen, rejected = trainer.compute_ref_log_probs(trainer.model, dict(batches[label][index]))
            seconds[label] += time.perf_counter() - started
            logps[label].append(torch.cat([chosen, rejected]))
    stock = torch.cat(logps["stock"])
    return {label: {"seconds": round(seconds[label], 2), "speedup_vs_stock": round(seconds["stock"] / seconds[label], 3),
                    "max_abs_logp_diff_vs_stock": float((torch.cat(logps[label]) - stock).abs().max())}
            for label in forwards}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--pairs", type=Path, default=Path("data/pairs/rpo/train.jsonl"))
    parser.add_argument("--limit", type=int, default=8, help="pairs per epoch")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per config")
    parser.add_argument("--loss-steps", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--bf16", default="false", help="bf16 setting of part 2 (auto | true | false)")
    parser.add_argument("--forward", default=TrainParams().forward, help="train.forward of part 2's losses")
    parser.add_argument("--only", nargs="*", default=None, help="part 1: these configs (and today) only")
    parser.add_argument("--skip", choices=["throughput", "losses", "reference"], action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_step.json"))
    args = parser.parse_args()
    args.bf16 = {"true": True, "false": False}.get(args.bf16, args.bf16)
    data = load_pairs(args.pairs, args.limit)
    work, cache = Path("/tmp/reverso-bench-train"), Path("/tmp/reverso-bench-train/ref-cache")
    result: dict[str, Any] = {
        "pairs_file": str(args.pairs), "pairs": len(data), "rounds": args.rounds, "max_length": args.max_length,
        "threads": torch.get_num_threads(), "bf16_auto": use_bf16("auto"), "machine": machine_info(),
        "command": "bench/train_step.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k not in ("out", "skip") and v is not None)}
    if "throughput" not in args.skip:
        result["throughput"] = throughput(args, data, work, cache)
    if "losses" not in args.skip:
        result["losses"] = losses(args, data, work, cache)
    if "reference" not in args.skip:
        result["reference"] = reference(args, data, work, cache)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
