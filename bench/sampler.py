"""Benchmark: the engine sampler vs HF batched ``generate`` on the pipeline's own prompts.

Prompts are collect's turn-0 prompts (persona + ~10 rendered rules, built from params.yaml and
the seed corpus), ``collect.samples_per_turn`` samples each, ``collect.sampler`` settings. Both
backends run in one process, alternating within each round so machine noise hits both alike.
Each backend also runs once with ``max_new_tokens=1`` to split prefill from decode. Writes
``bench/results/sampler.json`` (``engine``, ``engine_tokens_per_s``, ``hf_batched_tokens_per_s``,
``speedup``, the split, the config and the machine's load).

    .venv/bin/python bench/sampler.py                       # 8 prompts x 5 samples, params' lengths
    .venv/bin/python bench/sampler.py --prompts 16 --rounds 2 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import EngineParams, load_params
from reverso.generation import GenerationSettings, Sampler, make_sampler
from reverso.prompts import as_dicts, turn_messages


def pipeline_conversations(params_file: Path, seed_dir: Path, count: int) -> list[list[dict[str, str]]]:
    """Turn-0 prompts exactly as collect builds them (system message with the rendered rules)."""
    collect = load_params(params_file).collect
    sessions = build_sessions(load_seed(seed_dir), "train", count, collect.seed, turns=collect.turns,
                              system_constraints=collect.system_constraints, turn_constraints=collect.turn_constraints,
                              cumulative=collect.cumulative, eval_fraction=collect.eval_fraction)
    return [as_dicts(turn_messages(s, 0, [])) for s in sessions]


def timed(sampler: Sampler, conversations: list[Any], n: int, settings: GenerationSettings) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    outputs = sampler.generate(conversations, n, settings)
    return {"tokens": sum(c.completion_tokens for row in outputs for c in row),
            "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
            "rows": sum(len(row) for row in outputs),
            "truncated": sum(c.finish_reason == "length" for row in outputs for c in row)}


def summarise(runs: list[dict[str, float]], prefill: dict[str, float]) -> dict[str, Any]:
    tokens, wall = sum(r["tokens"] for r in runs), sum(r["wall_s"] for r in runs)
    per_round = wall / len(runs)
    decode_s = max(per_round - prefill["wall_s"], 1e-9)
    decode_tokens = tokens / len(runs) - prefill["tokens"]  # the first token of each row comes with the prefill
    return {"tokens_per_s": round(tokens / wall, 1), "tokens": tokens, "wall_s": round(wall, 2),
            "cpu_s": round(sum(r["cpu_s"] for r in runs), 2),
            "prefill_s": round(prefill["wall_s"], 2), "decode_s": round(decode_s, 2),
            "decode_tokens_per_s": round(decode_tokens / decode_s, 1),
            "prefill_share": round(prefill["wall_s"] / per_round, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed-dir", type=Path, default=Path("data/seed"))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: collect.sampler.max_new_tokens")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--compute-type", default=None, help="default: collect.sampler.engine.compute_type")
    parser.add_argument("--replicas", type=int, default=None)
    parser.add_argument("--threads-per-replica", type=int, default=None)
    parser.add_argument("--skip-hf", action="store_true", help="engine only (for sweeping engine configs)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampler.json"))
    args = parser.parse_args()

    collect = load_params(args.params).collect
    overrides = {k: v for k, v in {"compute_type": args.compute_type, "replicas": args.replicas,
                                    "threads_per_replica": args.threads_per_replica}.items() if v is not None}
    engine_params = EngineParams(**{**collect.sampler.engine.model_dump(), **overrides})
    max_new = args.max_new_tokens or collect.sampler.max_new_tokens
    n = collect.samples_per_turn
    conversations = pipeline_conversations(args.params, args.seed_dir, args.prompts)
    load_before = os.getloadavg()
    convert_started = time.perf_counter()
    samplers: dict[str, Sampler] = {"engine": make_sampler("engine", args.model, engine=engine_params)}
    convert_s = time.perf_counter() - convert_started
    if not args.skip_hf:
        samplers["hf_batched"] = make_sampler("hf", args.model, batch_size=collect.sampler.batch_size, progress=False)
    temperature, top_p = collect.sampler.temperature, collect.sampler.top_p
    prefill = {name: timed(s, conversations, n, GenerationSettings(temperature, top_p, 1, seed=0))
               for name, s in samplers.items()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in samplers}
    for round_index in range(args.rounds):
        settings = GenerationSettings(temperature, top_p, max_new, seed=round_index)
        names = list(samplers) if round_index % 2 == 0 else list(reversed(samplers))
        for name in names:
            runs[name].append(timed(samplers[name], conversations, n, settings))
    results = {name: summarise(runs[name], prefill[name]) for name in samplers}
    engine_rate = results["engine"]["tokens_per_s"]
    hf_rate = results.get("hf_batched", {}).get("tokens_per_s")
    prompt_lengths = [len(samplers["engine"].prompt_tokens(c)) for c in conversations]  # type: ignore[attr-defined]
    result = {
        "engine": f"ctranslate2 {__import__('ctranslate2').__version__}",
        "engine_tokens_per_s": engine_rate,
        "hf_batched_tokens_per_s": hf_rate,
        "speedup": round(engine_rate / hf_rate, 2) if hf_rate else None,
        "engine_config": {**engine_params.model_dump(exclude={"cache_dir"}),
                          "top_k": samplers["engine"].top_k,  # type: ignore[attr-defined]
                          "sampling": "one prompt per call, n samples forked from one prefill (num_hypotheses)"},
        "hf_batch_size": collect.sampler.batch_size,
        "details": results,
        "workload": {"model": str(args.model), "prompts": len(conversations), "samples_per_prompt": n,
                     "max_new_tokens": max_new, "temperature": temperature, "top_p": top_p, "rounds": args.rounds,
                     "prompt_tokens_min": min(prompt_lengths), "prompt_tokens_max": max(prompt_lengths)},
        "engine_convert_or_cache_s": round(convert_s, 2),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
