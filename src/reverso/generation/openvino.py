"""CPU inference backend: OpenVINO GenAI's continuous-batching pipeline over an exported model.

How it is driven (measured in docs/benchmarks.md): every prompt of a call is one request in one
continuous batch; a sampling request asks for its ``n`` samples through ``num_return_sequences``,
so its prompt is prefilled once and forked; prefix caching reuses the shared system prompt's KV
blocks across requests. Two precisions:

- ``precision: f32`` (evaluation): f32 inference and f32 KV cache over fp16 or fp32 weights —
  greedy token ids match HF fp32 ``generate`` (tests/test_generation.py, bench/parity.py).
- ``precision: default`` (collect's sampling): the engine's own choice on this CPU (bf16 inference
  where the CPU has it, u8 KV cache), over int8 weights: fastest, and samples are random anyway.

Semantics are the project's, the same in every backend (generation/base.py): prompts are the
chat-templated ids HF gets, top-k from the model's generation config, presence and frequency penalties over
generated tokens only, stop at EOS, and one RNG seed per request derived from the call's seed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reverso.generation.base import (
    Completion,
    Conversation,
    GenerationSettings,
    completion_from_ids,
    default_top_k,
    prompt_ids,
    request_seed,
    stop_ids,
)

F32_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}


class OpenVINOSampler:
    """``Sampler`` over an OpenVINO IR folder (base or merged policy); greedy when temperature is 0."""

    def __init__(self, ov_dir: str | Path, tokenizer: Any, *, precision: str = "f32", threads: int = 0,
                 kv_cache_gb: int = 1, top_k: int = 50, progress: bool = True, name: str = "openvino"):
        import openvino_genai

        self.tokenizer, self.top_k, self.progress, self.name = tokenizer, top_k, progress, name
        self.stops = stop_ids(tokenizer)
        scheduler = openvino_genai.SchedulerConfig()
        scheduler.enable_prefix_caching = True  # the system prompt (persona + rules) is computed once
        scheduler.cache_size = kv_cache_gb
        # LATENCY spreads one stream over every core; THROUGHPUT measured slower here (one core per stream).
        properties: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                      "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1}
        if precision == "f32":
            properties.update(F32_PROPERTIES)
        self.pipeline = openvino_genai.ContinuousBatchingPipeline(str(ov_dir), scheduler, "CPU", properties)
        self.last_timing: dict[str, float] = {}

    def _config(self, n: int, settings: GenerationSettings, index: int) -> Any:
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = settings.max_new_tokens
        config.stop_token_ids = set(self.stops)
        eos = self.tokenizer.eos_token_id
        config.eos_token_id = int(eos[0] if isinstance(eos, list) else eos)
        # OpenVINO's penalties count generated tokens only, as the project's semantics say.
        config.presence_penalty, config.frequency_penalty = settings.presence_penalty, settings.frequency_penalty
        if settings.temperature > 0:
            config.do_sample = True
            config.temperature, config.top_p, config.top_k = settings.temperature, settings.top_p, self.top_k
            config.num_return_sequences = n
            config.rng_seed = request_seed(settings.seed, index)
        else:
            config.do_sample = False
        return config

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        import numpy as np
        import openvino
        from openvino_genai import GenerationStatus

        prompts = [prompt_ids(self.tokenizer, c) for c in conversations]
        handles = [
            self.pipeline.add_request(index, openvino.Tensor(np.array([ids], dtype=np.int64)),
                                      self._config(n, settings, index))
            for index, ids in enumerate(prompts)
        ]
        started, pending = time.perf_counter(), set(range(len(handles)))
        bar = tqdm(total=len(prompts), desc=f"openvino x{n}", unit="prompt", disable=not self.progress)
        while self.pipeline.has_non_finished_requests():
            self.pipeline.step()
            done = {i for i in pending if handles[i].get_status() == GenerationStatus.FINISHED}
            if done:
                pending -= done
                bar.update(len(done))
        bar.close()
        self.last_timing = {"generate_s": time.perf_counter() - started}
        results = []
        for handle, ids in zip(handles, prompts, strict=True):
            status = handle.get_status()
            if status != GenerationStatus.FINISHED:
                raise RuntimeError(f"openvino request ended as {status}: a prompt longer than the KV cache holds? "
                                   "raise openvino.kv_cache_gb")
            outputs = handle.read_all()
            completions = [self._completion(output, len(ids)) for output in outputs]
            results.append(completions * n if settings.temperature == 0 else completions)
        return results

    def _completion(self, output: Any, prompt_tokens: int) -> Completion:
        ids = list(output.generated_ids)
        completion = completion_from_ids(self.tokenizer, ids, prompt_tokens, self.stops)
        from openvino_genai import GenerationFinishReason

        if completion.finish_reason == "length" and output.finish_reason == GenerationFinishReason.STOP:
            # the engine may leave the stop token out of the ids; its own reason is the truth
            return Completion(completion.text, "stop", prompt_tokens, completion.completion_tokens)
        return completion


def build_openvino_sampler(model_dir: str | Path, adapter: str | Path | None, params: Any,
                           progress: bool = True) -> OpenVINOSampler:
    """Export (or reuse the cached export of) base + adapter, and wrap it in an ``OpenVINOSampler``."""
    from transformers import AutoTokenizer

    from reverso.generation.convert import openvino_model_dir

    ov_dir = openvino_model_dir(model_dir, adapter, params.weight_format, params.cache_dir, params.exporter)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return OpenVINOSampler(ov_dir, tokenizer, precision=params.precision, threads=params.threads,
                           kv_cache_gb=params.kv_cache_gb, top_k=default_top_k(model_dir), progress=progress)
