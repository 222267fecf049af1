"""Run reverso's VLLMSampler in-process and write its completions as JSON (run under .venv-vllm/bin/python).

vLLM's CPU build lives in its own environment (requirements-vllm.lock), so tests/test_vllm.py runs this
script there, with the worktree's src/ on PYTHONPATH, and compares what it writes with HF in .venv.

    vllm_run.py MODEL_DIR OUT.json PROMPTS.json MAX_NEW_TOKENS SEED
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict


def main(model_dir: str, out: str, prompts_file: str, max_new_tokens: str, seed: str) -> None:
    from reverso.generation.config import VLLMParams
    from reverso.generation.base import GenerationSettings, generated_tokens
    from reverso.generation.servers import VLLMSampler

    conversations = json.loads(open(prompts_file, encoding="utf-8").read())
    params = VLLMParams(dtype="float32", kv_cache_gb=1, max_model_len=2048, enforce_eager=True)
    greedy = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=int(max_new_tokens), seed=0)
    sampled = GenerationSettings(temperature=1.0, top_p=0.95, max_new_tokens=int(max_new_tokens), seed=int(seed))
    report: dict = {"sampled": []}
    for run in range(2):  # two engines with the same seed: the seeded draws must repeat
        started = time.perf_counter()
        sampler = VLLMSampler(model_dir, params, seed=int(seed), progress=False)
        report["load_s"] = time.perf_counter() - started
        report["per_request_seed"] = sampler.per_request_seed
        if run == 0:
            started = time.perf_counter()
            rows = sampler.generate(conversations, 2, greedy)
            report["greedy_s"] = time.perf_counter() - started
            report["greedy_tokens"] = generated_tokens(rows)
            report["greedy"] = [[asdict(c) for c in row] for row in rows]
        rows = sampler.generate(conversations, 2, sampled)
        report["sampled"].append([[asdict(c) for c in row] for row in rows])
        sampler.close()
        del sampler
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":  # vLLM spawns its engine process: the module must be import-safe
    main(*sys.argv[1:])
