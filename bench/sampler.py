"""Benchmark: batched, left-padded HF sampling vs naive one-prompt-at-a-time generate.

Both runs sample the same prompts (n samples each, same settings) in one process, alternating
rounds so machine noise hits both alike. Writes JSON with tokens/s of each and the ratio
(target >= 4x on CPU).

    .venv/bin/python bench/sampler.py --model models/base --prompts 8 --samples 4 --out bench/results/sampler.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from reverso.collect.samplers import GenerationSettings, HFSampler
from reverso.prepare_model import load_model_and_tokenizer

QUESTIONS = ["Explain why the sky is blue.", "Give me three tips for a first trip abroad.",
             "How do I make a simple tomato soup?", "Write a short poem about autumn.",
             "Describe how a bicycle works.", "What is a budget and why keep one?",
             "Suggest a morning routine for a busy student.", "Summarize the water cycle."]


def conversations(count: int) -> list[list[dict[str, str]]]:
    system = ("You are a helpful assistant.\n\nFollow these rules in every reply:\n"
              "1. Answer with less than 60 words.\n2. Do not use any commas.")
    return [[{"role": "system", "content": system}, {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
            for i in range(count)]


def timed(sampler: HFSampler, convs: list[Any], n: int, settings: GenerationSettings, naive: bool) -> tuple[int, float]:
    """Tokens generated and seconds taken; naive = one generate call per prompt per sample."""
    started = time.perf_counter()
    if naive:
        outputs = [sampler.generate([conv], 1, settings)[0] for conv in convs for _ in range(n)]
    else:
        outputs = sampler.generate(convs, n, settings)
    elapsed = time.perf_counter() - started
    return sum(c.completion_tokens for row in outputs for c in row), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampler.json"))
    args = parser.parse_args()

    model, tokenizer = load_model_and_tokenizer(args.model)
    batched = HFSampler(model, tokenizer, batch_size=args.batch_size, progress=False)
    naive = HFSampler(model, tokenizer, batch_size=1, progress=False)
    convs = conversations(args.prompts)
    totals = {"batched": [0, 0.0], "naive": [0, 0.0]}
    for round_index in range(args.rounds):
        settings = GenerationSettings(1.0, 0.95, args.max_new_tokens, seed=round_index)
        for name, sampler in (("batched", batched), ("naive", naive)):
            tokens, elapsed = timed(sampler, convs, args.samples, settings, naive=name == "naive")
            totals[name][0] += tokens
            totals[name][1] += elapsed
    rates = {name: tokens / elapsed for name, (tokens, elapsed) in totals.items()}
    result = {
        "model": str(args.model), "prompts": args.prompts, "samples_per_prompt": args.samples,
        "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "rounds": args.rounds,
        "batched_tokens_per_s": round(rates["batched"], 1), "naive_tokens_per_s": round(rates["naive"], 1),
        "speedup": round(rates["batched"] / rates["naive"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
