"""A CTranslate2 int8 sampler: bench/sampler.py's baseline, not a product backend.

Configured as docs/benchmarks.md ("Generation engine") chose from its measurements on these CPUs,
so the baseline is CTranslate2 at its measured best: sampling puts one prompt per call with its n
samples forked from one prefill (``num_hypotheses``); greedy batches 4 prompts of similar length;
calls go round-robin to 2 single-threaded generators. ctranslate2 comes from requirements-bench.txt
(``make bench-sampler``), never from the product's or the tests' requirements.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reverso.generation.base import (Completion, Conversation, GenerationSettings, completion_from_ids,
                                     default_top_k, prompt_ids, stop_ids)


class CTranslate2Sampler:
    name = "ctranslate2"

    def __init__(self, model_dir: str | Path, compute_type: str = "int8", replicas: int = 2, greedy_batch: int = 4):
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
        from transformers import AutoTokenizer

        self.workdir = Path(tempfile.mkdtemp(prefix="ct2-"))
        weakref.finalize(self, shutil.rmtree, self.workdir, True)  # the converted model goes with the sampler
        TransformersConverter(str(model_dir), low_cpu_mem_usage=True).convert(str(self.workdir / "m"),
                                                                              quantization=compute_type)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.stops, self.top_k, self.greedy_batch = stop_ids(self.tokenizer), default_top_k(model_dir), greedy_batch
        self.compute_type, self.replicas, self.version = compute_type, replicas, ctranslate2.__version__

    def _replica(self, seed: int | None) -> Any:
        import ctranslate2

        replica = ctranslate2.Generator(str(self.workdir / "m"), device="cpu", compute_type=self.compute_type,
                                        inter_threads=1, intra_threads=1)
        if seed is not None:  # the first sampling call fixes the worker thread's RNG to the seed just set
            ctranslate2.set_random_seed(seed)
            replica.generate_batch([[self.tokenizer.convert_ids_to_tokens(min(self.stops))]], max_length=1,
                                   sampling_topk=0, include_prompt_in_result=False)
        return replica

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        prompts = [prompt_ids(self.tokenizer, c) for c in conversations]
        tokens = [self.tokenizer.convert_ids_to_tokens(ids) for ids in prompts]
        sample = settings.temperature > 0
        replicas = [self._replica(settings.seed * 1000 + k if sample else None) for k in range(self.replicas)]
        options: dict[str, Any] = {
            "max_length": settings.max_new_tokens, "include_prompt_in_result": False, "return_end_token": True,
            "end_token": sorted(self.stops), "num_hypotheses": n if sample else 1,
            "sampling_topk": self.top_k if sample else 1, "sampling_topp": settings.top_p if sample else 1.0,
            "sampling_temperature": settings.temperature if sample else 1.0}
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        per_call = 1 if sample else self.greedy_batch
        batches = [order[s : s + per_call] for s in range(0, len(order), per_call)]

        def run(index: int) -> list[tuple[int, list[list[int]]]]:
            done = []
            for batch in batches[index :: len(replicas)]:
                results = replicas[index].generate_batch([tokens[i] for i in batch], max_batch_size=len(batch), **options)
                done.extend((i, [list(s) for s in r.sequences_ids]) for i, r in zip(batch, results, strict=True))
            return done

        sequences: dict[int, list[list[int]]] = {}
        with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
            for done in pool.map(run, range(len(replicas))):
                sequences.update(done)
        return [[completion_from_ids(self.tokenizer, seq, len(prompts[i]), self.stops)
                 for seq in (sequences[i] if sample else sequences[i] * n)] for i in range(len(prompts))]
