"""CPU inference-engine backend: CTranslate2, driven for throughput on a few cores.

How it is driven (measured in docs/benchmarks.md): when sampling, each engine call holds one
prompt, prefilled once and forked into its ``n`` samples (``num_hypotheses``); n copies of a prompt
would prefill it n times, and calls mixing prompts gained nothing (the engine feeds the part of
longer prompts beyond the shortest one token by token).
Greedy calls hold up to ``greedy_batch`` prompts of similar length (sorted by length). Calls go
round-robin to ``replicas`` single-threaded generators running concurrently, which on a few cores
beats one generator with several intra-op threads.

Determinism: CTranslate2 seeds each worker thread's RNG once, on its first sampling call, from a
process-wide seed. A sampling call therefore builds fresh replicas and seeds replica ``k`` with
``seed * 1000 + k`` through a one-token warm-up, and each replica gets a fixed list of batches:
same seed, same prompts and same config give the same samples.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reverso.generation.base import Completion, Conversation, GenerationSettings, completion_from_ids, prompt_ids, stop_ids
from reverso.generation.convert import engine_model_dir
from reverso.memory import keep_large_buffers_on_heap

HF_DEFAULT_TOP_K = 50


class EngineSampler:
    """``Sampler`` over a converted CTranslate2 model (base or merged policy); greedy when temperature is 0."""

    def __init__(self, engine_dir: str | Path, tokenizer: Any, *, compute_type: str = "int8", replicas: int = 2,
                 threads_per_replica: int = 1, greedy_batch: int = 4, top_k: int = 50, name: str = "engine"):
        self.engine_dir, self.tokenizer, self.name = str(engine_dir), tokenizer, name
        self.compute_type, self.replicas, self.threads = compute_type, replicas, threads_per_replica
        self.greedy_batch, self.top_k = greedy_batch, top_k  # top_k: the model's generation_config, as HF samples
        self.stops = stop_ids(tokenizer)
        keep_large_buffers_on_heap()
        self._greedy_pool: list[Any] | None = None  # greedy needs no RNG: its replicas are reused
        self.last_timing: dict[str, float] = {}

    def prompt_tokens(self, conversation: Conversation) -> list[str]:
        """The engine's input: the chat-templated prompt ids (as HF generate gets them), as vocabulary tokens."""
        return self.tokenizer.convert_ids_to_tokens(prompt_ids(self.tokenizer, conversation))

    def _replica(self) -> Any:
        import ctranslate2

        return ctranslate2.Generator(self.engine_dir, device="cpu", compute_type=self.compute_type,
                                     inter_threads=1, intra_threads=self.threads)

    def _seeded_replicas(self, seed: int) -> list[Any]:
        import ctranslate2

        replicas = []
        for index in range(self.replicas):
            replica = self._replica()
            ctranslate2.set_random_seed((seed * 1000 + index) % 2**32)
            # The first sampling call fixes this replica's worker-thread RNG to the seed just set.
            replica.generate_batch([[self.tokenizer.convert_ids_to_tokens(sorted(self.stops))[0]]], max_length=1,
                                   sampling_topk=0, include_prompt_in_result=False)
            replicas.append(replica)
        return replicas

    def _batches(self, prompts: list[list[int]], per_batch: int) -> list[list[int]]:
        """Indices of prompts per engine call, sorted by length so a call's prompts differ little."""
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        return [order[start : start + per_batch] for start in range(0, len(order), per_batch)]

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        prompts = [prompt_ids(self.tokenizer, c) for c in conversations]
        tokens = [self.tokenizer.convert_ids_to_tokens(ids) for ids in prompts]
        sample = settings.temperature > 0
        hypotheses = n if sample else 1  # greedy: one decode, copied n times
        if sample:
            replicas = self._seeded_replicas(settings.seed)
        else:
            self._greedy_pool = self._greedy_pool or [self._replica() for _ in range(self.replicas)]
            replicas = self._greedy_pool
        options: dict[str, Any] = {
            "max_length": settings.max_new_tokens, "include_prompt_in_result": False, "return_end_token": True,
            "end_token": sorted(self.stops), "num_hypotheses": hypotheses,
            "sampling_topk": self.top_k if sample else 1, "sampling_topp": settings.top_p if sample else 1.0,
            "sampling_temperature": settings.temperature if sample else 1.0,
            "repetition_penalty": settings.repetition_penalty,
        }
        batches = self._batches(prompts, 1 if sample else self.greedy_batch)
        started = time.perf_counter()

        def run(replica_index: int) -> list[tuple[int, list[list[int]]]]:
            replica, done = replicas[replica_index], []
            for batch in batches[replica_index :: len(replicas)]:
                results = replica.generate_batch([tokens[i] for i in batch], max_batch_size=len(batch), **options)
                done.extend((i, [list(s) for s in r.sequences_ids]) for i, r in zip(batch, results, strict=True))
            return done

        sequences: dict[int, list[list[int]]] = {}
        with ThreadPoolExecutor(max_workers=len(replicas)) as pool:  # the engine releases the GIL
            for done in pool.map(run, range(len(replicas))):
                sequences.update(done)
        self.last_timing = {"generate_s": time.perf_counter() - started}
        out = []
        for index, ids in enumerate(prompts):
            seqs = sequences[index] * (n if not sample else 1)
            out.append([completion_from_ids(self.tokenizer, seq, len(ids), self.stops) for seq in seqs[:n]])
        return out


def build_engine_sampler(model_dir: str | Path, adapter: str | Path | None, params: Any) -> EngineSampler:
    """Convert (or reuse the cached conversion of) base + adapter, and wrap it in an ``EngineSampler``."""
    from transformers import AutoTokenizer, GenerationConfig

    engine_dir = engine_model_dir(model_dir, adapter, params.compute_type, params.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    try:  # HF generate samples with the model's top_k, else transformers' default 50; so does the engine
        top_k = GenerationConfig.from_pretrained(str(model_dir)).top_k
    except OSError:
        top_k = None
    top_k = HF_DEFAULT_TOP_K if top_k is None else top_k
    return EngineSampler(engine_dir, tokenizer, compute_type=params.compute_type, replicas=params.replicas,
                         threads_per_replica=params.threads_per_replica, greedy_batch=params.greedy_batch, top_k=top_k)
