"""Benchmark: evaluation throughput (responses/s) and the share of time in generation vs scoring.

    .venv/bin/python bench/eval.py --model models/base --out bench/results/eval.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reverso.generation.hf import HFSampler
from reverso.config import EvaluateParams, SuiteSizes
from reverso.evaluate import generate_suites, score_model
from reverso.evaluate.suites import build_suites
from reverso.prepare_model import load_model_and_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--seed-dir", type=Path, default=Path("data/seed"))
    parser.add_argument("--ifeval", type=int, default=8)
    parser.add_argument("--multi-if", type=int, default=3)
    parser.add_argument("--sysbench", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("bench/results/eval.json"))
    args = parser.parse_args()

    params = EvaluateParams(suites=SuiteSizes(ifeval=args.ifeval, multi_if=args.multi_if, sysbench=args.sysbench),
                            max_new_tokens=args.max_new_tokens)
    suites = build_suites(params, args.seed_dir)
    model, tokenizer = load_model_and_tokenizer(args.model)
    sampler = HFSampler(model, tokenizer, batch_size=params.batch_size, progress=False)
    started = time.perf_counter()
    texts = generate_suites(sampler, suites, params)
    generated = time.perf_counter()
    score_model(suites, texts)
    scored = time.perf_counter()
    responses = sum(len(turns) for suite in texts.values() for turns in suite)
    generation, scoring = generated - started, scored - generated
    result = {
        "model": str(args.model), "responses": responses, "suites": {k: len(v) for k, v in suites.items()},
        "generation_s": round(generation, 2), "scoring_s": round(scoring, 4),
        "responses_per_s": round(responses / (generation + scoring), 3),
        "share_generation": round(generation / (generation + scoring), 4),
        "share_scoring": round(scoring / (generation + scoring), 4),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
