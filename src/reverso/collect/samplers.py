"""Response samplers behind one interface: HF generate (batched, left-padded), vLLM, OpenAI-compatible.

``generate(conversations, n, settings)`` returns, for every conversation, ``n`` completions.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm import tqdm

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


class Sampler(Protocol):
    name: str

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]: ...


class HFSampler:
    """Batched ``model.generate`` with left padding; greedy when temperature is 0."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, name: str = "hf", progress: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.name, self.progress = batch_size, name, progress
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        import torch

        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        per_batch = max(1, self.batch_size // n)  # rows in flight = prompts x samples
        results: list[list[Completion]] = []
        bar = tqdm(total=len(texts), desc=f"sampling x{n}", unit="prompt", disable=not self.progress)
        generated_tokens, started = 0, time.perf_counter()
        for start in range(0, len(texts), per_batch):
            batch = texts[start : start + per_batch]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(settings.seed + start)
            sample = settings.temperature > 0
            kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": settings.max_new_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id,
                                      "num_return_sequences": n if sample else 1}
            if sample:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            with torch.no_grad():
                out = self.model.generate(**enc, **kwargs)
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
            for row in range(len(batch)):
                completions = []
                for k in range(n):
                    seq = new_tokens[row * n + k] if sample else new_tokens[row]
                    completions.append(self._completion(seq, int(prompt_lengths[row])))
                    generated_tokens += completions[-1].completion_tokens
                results.append(completions)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{generated_tokens / max(time.perf_counter() - started, 1e-9):.1f}")
        bar.close()
        return results

    def _completion(self, seq: Any, prompt_tokens: int) -> Completion:
        ids = seq.tolist()
        eos = self.tokenizer.eos_token_id
        stop_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.pad_token_id}
        end = next((i for i, t in enumerate(ids) if t in stop_ids), None)
        finish = "stop" if end is not None else "length"
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Completion(text, finish, prompt_tokens, len(kept))


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
            data = self._post({
                "model": self.model, "messages": conversation, "n": n, "seed": settings.seed,
                "temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_new_tokens,
            })
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
                                max_tokens=settings.max_new_tokens, seed=settings.seed)
        outputs = self.llm.chat(conversations, params)
        return [
            [Completion(o.text.strip(), "length" if o.finish_reason == "length" else "stop",
                        len(out.prompt_token_ids), len(o.token_ids)) for o in out.outputs]
            for out in outputs
        ]
