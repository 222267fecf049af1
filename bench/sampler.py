"""Benchmark: OpenVINO vs CTranslate2 int8 (the baseline) vs HF ``generate``, in one run.

Two workloads on the pipeline's own prompts (collect's turn-0 prompts: persona + ~10 rendered
rules, from params.yaml and the seed corpus):
- sampling: ``--prompts`` prompts x ``collect.samples_per_turn`` samples at ``collect.sampler``'s
  settings (OpenVINO as collect runs it: int8 weights, the engine's own precision);
- greedy: ``--greedy-prompts`` prompts at ``evaluate.max_new_tokens`` (OpenVINO as evaluate runs
  it: fp16 weights, f32 inference and KV cache; HF in fp32).
Backends alternate within each round so machine noise hits all alike; HF (slow) runs in the first
``--hf-rounds`` rounds only. Writes ``bench/results/sampler.json``: ``engine``,
``engine_tokens_per_s``, ``greedy_tokens_per_s``, ``ctranslate2_tokens_per_s``,
``hf_batched_tokens_per_s``, ``speedup_vs_ctranslate2``, ``speedup_vs_hf``, truncation per backend,
``cpu_flags`` and versions.

CTranslate2 is not in the dev requirements: ``make bench-sampler`` installs requirements-bench.txt
into .venv and runs this script with its defaults.

    make bench-sampler                                        # = the line below, after installing ctranslate2
    .venv/bin/python bench/sampler.py                         # 16 x 5 sampling, 32 greedy, 2 rounds
    .venv/bin/python bench/sampler.py --prompts 4 --greedy-prompts 4 --rounds 1 --hf-rounds 0   # smoke
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import load_params
from reverso.generation import GenerationSettings, Sampler, make_sampler
from reverso.machine import machine_info
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
            "texts": [c.text for row in outputs for c in row],
            "truncated": sum(c.finish_reason == "length" for row in outputs for c in row)}


def rate(runs: list[dict[str, Any]]) -> float | None:
    wall = sum(r["wall_s"] for r in runs)
    return round(sum(r["tokens"] for r in runs) / wall, 1) if runs and wall else None


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rows = sum(r["rows"] for r in runs)
    return {"tokens_per_s": rate(runs), "runs": len(runs), "per_run_tokens_per_s": [round(r["tokens"] / r["wall_s"], 1)
                                                                                   for r in runs],
            "truncated": sum(r["truncated"] for r in runs), "rows": rows,
            "mean_tokens": round(sum(r["tokens"] for r in runs) / rows, 1) if rows else None}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from ctranslate2_baseline import CTranslate2Sampler

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed-dir", type=Path, default=Path("data/seed"))
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--greedy-prompts", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hf-rounds", type=int, default=1, help="rounds that also run HF (slow); 0 = none")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampler.json"))
    args = parser.parse_args()
    if importlib.util.find_spec("ctranslate2") is None:
        sys.exit("bench/sampler.py needs ctranslate2 for its baseline: make bench-sampler "
                 "(or .venv/bin/python -m pip install --no-deps -r requirements-bench.txt)")

    params = load_params(args.params)
    collect, evaluate = params.collect, params.evaluate
    n, sampler_params = collect.samples_per_turn, collect.sampler
    conversations = pipeline_conversations(args.params, args.seed_dir, max(args.prompts, args.greedy_prompts))
    sampling_prompts, greedy_prompts = conversations[: args.prompts], conversations[: args.greedy_prompts]
    load_before = os.getloadavg()
    started = time.perf_counter()
    sampling: dict[str, Sampler] = {
        "openvino": make_sampler("openvino", args.model, openvino=sampler_params.openvino, progress=False)}
    greedy: dict[str, Sampler] = {
        "openvino": make_sampler("openvino", args.model, openvino=evaluate.openvino, progress=False)}
    sampling["ctranslate2"] = greedy["ctranslate2"] = CTranslate2Sampler(args.model)
    setup_s = time.perf_counter() - started
    hf = make_sampler("hf", args.model, batch_size=sampler_params.batch_size, progress=False)
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_index in range(args.rounds):
        with_hf = round_index < args.hf_rounds
        sample_settings = GenerationSettings(sampler_params.temperature, sampler_params.top_p,
                                             sampler_params.max_new_tokens, seed=round_index,
                                             presence_penalty=sampler_params.presence_penalty,
                                             frequency_penalty=sampler_params.frequency_penalty)
        greedy_settings = GenerationSettings(0.0, 1.0, evaluate.max_new_tokens, seed=0)
        jobs = [(f"sampling/{name}", s, sampling_prompts, n, sample_settings) for name, s in sampling.items()]
        jobs += [(f"greedy/{name}", s, greedy_prompts, 1, greedy_settings) for name, s in greedy.items()]
        if with_hf:
            jobs += [("sampling/hf", hf, sampling_prompts, n, sample_settings),
                     ("greedy/hf", hf, greedy_prompts, 1, greedy_settings)]
        for name, sampler, prompts, count, settings in (jobs if round_index % 2 == 0 else jobs[::-1]):
            run = timed(sampler, prompts, count, settings)
            runs.setdefault(name, []).append(run)
            print(name, round(run["tokens"] / run["wall_s"], 1), "tok/s", flush=True)
    greedy_texts = {name: runs[f"greedy/{name}"][0]["texts"] for name in ("openvino", "hf") if f"greedy/{name}" in runs}
    details = {name: report(r) for name, r in runs.items()}
    ov, ct2 = details["sampling/openvino"]["tokens_per_s"], details["sampling/ctranslate2"]["tokens_per_s"]
    ov_greedy, ct2_greedy = details["greedy/openvino"]["tokens_per_s"], details["greedy/ctranslate2"]["tokens_per_s"]
    hf_rate = details.get("sampling/hf", {}).get("tokens_per_s")
    import openvino

    result = {
        "engine": f"openvino {openvino.__version__}",
        "engine_tokens_per_s": ov,
        "greedy_tokens_per_s": ov_greedy,
        "ctranslate2_tokens_per_s": ct2,
        "ctranslate2_greedy_tokens_per_s": ct2_greedy,
        "hf_batched_tokens_per_s": hf_rate,
        "hf_greedy_tokens_per_s": details.get("greedy/hf", {}).get("tokens_per_s"),
        "speedup_vs_ctranslate2": ratio(ov, ct2),
        "greedy_speedup_vs_ctranslate2": ratio(ov_greedy, ct2_greedy),
        "speedup_vs_hf": ratio(ov, hf_rate),
        "greedy_speedup_vs_hf": ratio(ov_greedy, details.get("greedy/hf", {}).get("tokens_per_s")),
        "greedy_answers_equal_to_hf": (sum(a == b for a, b in zip(greedy_texts["openvino"], greedy_texts["hf"],
                                                                   strict=True)) if "hf" in greedy_texts else None),
        "goals": {"sampling_vs_ctranslate2": ">= 3", "f32_greedy_vs_ctranslate2_int8": ">= 1.5"},
        "details": details,
        "config": {"openvino_sampling": sampler_params.openvino.model_dump(exclude={"cache_dir", "exporter"}),
                   "openvino_greedy": evaluate.openvino.model_dump(exclude={"cache_dir", "exporter"}),
                   "ctranslate2": {"compute_type": "int8", "replicas": 2, "threads_per_replica": 1,
                                   "version": sampling["ctranslate2"].version},  # type: ignore[attr-defined]
                   "hf": {"dtype": "float32", "batch_size": sampler_params.batch_size}},
        "workload": {"model": str(args.model), "sampling_prompts": len(sampling_prompts), "samples_per_prompt": n,
                     "sampling_max_new_tokens": sampler_params.max_new_tokens,
                     "temperature": sampler_params.temperature, "top_p": sampler_params.top_p,
                     "presence_penalty": sampler_params.presence_penalty,
                     "frequency_penalty": sampler_params.frequency_penalty, "greedy_prompts": len(greedy_prompts),
                     "greedy_max_new_tokens": evaluate.max_new_tokens, "rounds": args.rounds,
                     "hf_rounds": args.hf_rounds},
        "setup_s": round(setup_s, 1),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        **machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in {"details", "config"}}, indent=2))


if __name__ == "__main__":
    main()
