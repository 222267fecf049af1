"""Scale-out backends: any OpenAI-compatible server, and in-process vLLM on GPUs."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from tqdm import tqdm

from reverso.generation.base import Completion, Conversation, GenerationSettings


class OpenAISampler:
    """Any OpenAI-compatible /chat/completions endpoint (vLLM serve, TGI, llama.cpp, hosted APIs)."""

    def __init__(self, base_url: str, model: str, api_key_env: str, timeout: float = 120.0, retries: int = 3):
        self.base_url, self.model, self.name = base_url.rstrip("/"), model, "openai"
        self.api_key_env, self.timeout, self.retries = api_key_env, timeout, retries

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:  # the key lives only in this header: never logged, never written
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
                last = exc
                time.sleep(min(2**attempt, 10))
        raise RuntimeError(f"sampler endpoint {self.base_url} failed after {self.retries} tries: {last}")

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        results = []
        for conversation in tqdm(conversations, desc=f"sampling x{n} ({self.base_url})", unit="prompt"):
            body = {"model": self.model, "messages": conversation, "n": n, "seed": settings.seed,
                    "temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_new_tokens}
            if settings.presence_penalty:  # OpenAI's own fields: generated tokens only, as every backend
                body["presence_penalty"] = settings.presence_penalty
            if settings.frequency_penalty:
                body["frequency_penalty"] = settings.frequency_penalty
            data = self._post(body)
            usage = data.get("usage") or {}
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) != n:
                raise RuntimeError(f"sampler endpoint returned {len(choices or [])} choices, expected {n}")
            results.append([
                Completion(
                    text=str((choice.get("message") or {}).get("content") or "").strip(),
                    finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)) // n,
                )
                for choice in choices
            ])
        return results


class VLLMSampler:
    """In-process vLLM (tensor parallel on GPUs). Only used when vllm is installed."""

    def __init__(self, model_path: str, tensor_parallel_size: int = 1):
        try:
            from vllm import LLM
        except ImportError as exc:  # vllm is a GPU-only optional dependency
            raise RuntimeError("collect.sampler.backend=vllm needs `pip install vllm` on a GPU machine") from exc
        self.llm, self.name = LLM(model=model_path, tensor_parallel_size=tensor_parallel_size), "vllm"

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=settings.temperature, top_p=settings.top_p,
                                max_tokens=settings.max_new_tokens, seed=settings.seed,
                                presence_penalty=settings.presence_penalty,
                                frequency_penalty=settings.frequency_penalty)
        outputs = self.llm.chat(conversations, params)
        return [
            [Completion(o.text.strip(), "length" if o.finish_reason == "length" else "stop",
                        len(out.prompt_token_ids), len(o.token_ids)) for o in out.outputs]
            for out in outputs
        ]
