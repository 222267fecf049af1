"""Probe (issue 12): llama.cpp multi-sequence sampling vs the CTranslate2 engine, same prompts, one run.

Not a backend: a measurement of whether llama.cpp's batch API, driven the way the issue asks (prefill
each prompt once, fork its n samples by copying the sequence's cache, decode every live sequence of
several prompts in one batch), beats the engine sampler on collect's own prompts. Needs
``llama-cpp-python`` (built from its sdist, ~5 min) and a GGUF of ``models/base`` made with the
sdist's ``convert_hf_to_gguf.py``:

    python vendor/llama.cpp/convert_hf_to_gguf.py models/base --outtype q8_0 --outfile /tmp/base-q8_0.gguf
    python bench/llamacpp_probe.py --gguf /tmp/base-q8_0.gguf --parallel 1 4 8

Writes ``bench/results/llamacpp_probe.json``: tokens/s per configuration and the engine's in the
same run on the same prompts.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import time
from pathlib import Path

import llama_cpp as lc
from sampler import (  # bench/sampler.py: collect's prompts, one timed run
    pipeline_conversations,
    timed,
)
from transformers import AutoTokenizer

from reverso.config import load_params
from reverso.generation import GenerationSettings, make_sampler
from reverso.generation.base import prompt_ids


class LlamaCpp:
    """One llama.cpp context; ``run`` samples n continuations of each prompt, ``parallel`` prompts at a time."""

    def __init__(self, gguf: Path, max_seqs: int, n_ctx: int, threads: int) -> None:
        lc.llama_backend_init()
        model_params = lc.llama_model_default_params()
        self.model = lc.llama_model_load_from_file(str(gguf).encode(), model_params)
        self.vocab = lc.llama_model_get_vocab(self.model)
        params = lc.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, 512, 512
        params.n_seq_max, params.n_threads, params.n_threads_batch = max_seqs, threads, threads
        params.kv_unified = True
        self.ctx = lc.llama_init_from_model(self.model, params)
        self.memory = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(512, 0, max_seqs)

    def _fill(self, items: list[tuple[int, int, int, bool]]) -> None:
        """items: (token, position, sequence, wants_logits)."""
        self.batch.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            self.batch.token[i], self.batch.pos[i] = token, pos
            self.batch.n_seq_id[i] = 1
            self.batch.seq_id[i][0] = seq
            self.batch.logits[i] = logits
        if lc.llama_decode(self.ctx, self.batch) != 0:
            raise RuntimeError("llama_decode failed")

    def _sampler(self, settings: GenerationSettings, seed: int) -> ctypes.c_void_p:
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(50))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(settings.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(settings.temperature))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
        return chain

    def run(self, prompts: list[list[int]], n: int, settings: GenerationSettings, parallel: int) -> dict:
        tokens = prefill_s = 0.0
        started = time.perf_counter()
        for group_start in range(0, len(prompts), parallel):
            group = prompts[group_start : group_start + parallel]
            lc.llama_memory_clear(self.memory, True)
            t0 = time.perf_counter()
            for g, ids in enumerate(group):  # prefill each prompt once (all but its last token), then fork
                base, head = g * n, ids[:-1]
                for chunk in range(0, len(head), 512):
                    part = head[chunk : chunk + 512]
                    self._fill([(t, chunk + i, base, False) for i, t in enumerate(part)])
                for s in range(1, n):
                    lc.llama_memory_seq_cp(self.memory, base, base + s, -1, -1)
            prefill_s += time.perf_counter() - t0
            # Decoding starts at each prompt's last token, so every sequence samples its own first token.
            samplers = [self._sampler(settings, 1000 * group_start + k) for k in range(len(group) * n)]
            live = {g * n + s: len(group[g]) - 1 for g in range(len(group)) for s in range(n)}
            last = {seq: group[seq // n][-1] for seq in live}
            while live:
                order = sorted(live)
                self._fill([(last[seq], live[seq], seq, True) for seq in order])
                for i, seq in enumerate(order):
                    token = lc.llama_sampler_sample(samplers[seq], self.ctx, i)
                    tokens += 1
                    live[seq] += 1
                    last[seq] = token
                    produced = live[seq] - (len(group[seq // n]) - 1)
                    if lc.llama_vocab_is_eog(self.vocab, token) or produced >= settings.max_new_tokens:
                        del live[seq]
            for chain in samplers:
                lc.llama_sampler_free(chain)
        wall = time.perf_counter() - started
        return {"tokens": int(tokens), "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
                "prefill_s": round(prefill_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/llamacpp_probe.json"))
    args = parser.parse_args()
    collect = load_params("params.yaml").collect
    n = collect.samples_per_turn
    settings = GenerationSettings(collect.sampler.temperature, collect.sampler.top_p,
                                  args.max_new_tokens or collect.sampler.max_new_tokens, 7)
    conversations = pipeline_conversations(Path("params.yaml"), Path("data/seed"), args.prompts)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    prompts = [prompt_ids(tokenizer, c) for c in conversations]
    longest = max(len(p) for p in prompts) + settings.max_new_tokens + 8
    llama = LlamaCpp(args.gguf, max(args.parallel) * n, longest * max(args.parallel) * n, args.threads)
    result: dict = {"gguf": args.gguf.name, "threads": args.threads, "prompts": len(prompts), "samples": n,
                    "max_new_tokens": settings.max_new_tokens,
                    "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1), "llamacpp": {}}
    for parallel in args.parallel:
        result["llamacpp"][f"parallel_{parallel}"] = llama.run(prompts, n, settings, parallel)
        print(parallel, result["llamacpp"][f"parallel_{parallel}"], flush=True)
    engine = make_sampler("engine", args.model, None, engine=collect.sampler.engine, progress=False)
    run = timed(engine, conversations, n, settings)
    result["engine"] = {"tokens": run["tokens"], "wall_s": round(run["wall_s"], 2),
                        "tokens_per_s": round(run["tokens"] / run["wall_s"], 1),
                        "config": collect.sampler.engine.model_dump()}
    print("engine", result["engine"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
