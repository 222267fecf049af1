"""Judges for soft constraints: a model reads the response and returns one verdict per constraint.

Backends: a local HF model, or any OpenAI-compatible chat endpoint (base URL + model; the API key
is read from the environment variable *named* in the config, never stored). Model output is
parsed against a JSON schema; malformed output is retried, then recorded as an error verdict —
never defaulted to "passed".
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reverso.constraints.base import CheckContext, Constraint, Verdict

ModelT = TypeVar("ModelT", bound=BaseModel)

SYSTEM = ("You are a strict evaluator. For each numbered instruction, decide whether the RESPONSE follows it. "
          'Answer with JSON only: {"verdicts": [{"index": 1, "passed": true, "reason": "..."}, ...]} '
          "with exactly one entry per instruction, in order.")


class JudgeItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=1)
    passed: bool
    reason: str = Field(min_length=1, max_length=2000)


class JudgeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdicts: list[JudgeItem]


REWRITE_SYSTEM = ("Rewrite the instruction so that it asks for the exact opposite behaviour, in one sentence. "
                  'Answer with JSON only: {"opposite": "..."}')


class RewriteOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opposite: str = Field(min_length=1, max_length=500)


class ChatBackend(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]]) -> str: ...


def judge_messages(constraints: Sequence[Constraint], response: str, context: CheckContext) -> list[dict[str, str]]:
    from reverso.constraints import describe

    rules = "\n".join(f"{i}. {describe(c, random.Random(0))}" for i, c in enumerate(constraints, start=1))
    user = f"INSTRUCTIONS:\n{rules}\n\nUSER REQUEST:\n{context.prompt}\n\nRESPONSE:\n{response}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_json(raw: str, schema: type[ModelT]) -> ModelT:
    """The first JSON object in model output (a ```json fence is allowed), checked against ``schema``."""
    match = re.search(r"\{.*\}", raw, flags=re.DOTALL)
    if match is None:
        raise ValueError("no JSON object in judge output")
    try:
        return schema.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"judge output does not match the schema: {exc}") from exc
    except RecursionError:
        raise ValueError("judge output is JSON nested too deeply to parse") from None


def parse_output(raw: str, expected: int) -> list[JudgeItem]:
    """Schema-check verdict output; raises ValueError when it does not fit."""
    output = parse_json(raw, JudgeOutput)
    indices = [item.index for item in output.verdicts]
    if sorted(indices) != list(range(1, expected + 1)):
        raise ValueError(f"judge returned verdicts for {indices}, expected 1..{expected}")
    return sorted(output.verdicts, key=lambda item: item.index)


class Judge:
    """Judges soft constraints through a chat backend, with schema validation and retries."""

    def __init__(self, backend: ChatBackend, retries: int = 2) -> None:
        self.backend, self.retries = backend, retries

    @property
    def name(self) -> str:
        return self.backend.name

    def judge(self, constraints: Sequence[Constraint], response: str, context: CheckContext | None = None) -> list[Verdict]:
        if not constraints:
            return []
        messages = judge_messages(constraints, response, context or CheckContext())
        problem = ""
        for _ in range(self.retries + 1):
            try:
                items = parse_output(self.backend.complete(messages), len(constraints))
                return [Verdict(item.passed, f"judge: {item.reason}") for item in items]
            except (ValueError, RuntimeError) as exc:
                problem = str(exc)
        return [Verdict(False, f"judge error: {problem}", error=True) for _ in constraints]

    def opposite(self, instruction: str) -> str | None:
        """The model's wording of the opposite instruction, schema-checked; None when it never fits."""
        messages = [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": instruction}]
        for _ in range(self.retries + 1):
            try:
                text = parse_json(self.backend.complete(messages), RewriteOutput).opposite.strip()
            except (ValueError, RuntimeError):
                continue
            if text and text.casefold() != instruction.strip().casefold():
                return text
        return None


class OpenAIChatBackend:
    """Any OpenAI-compatible ``/chat/completions`` endpoint; the key comes from ``api_key_env``."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "REVERSO_JUDGE_API_KEY", timeout: float = 60):
        self.base_url, self.model, self.api_key_env, self.timeout = base_url.rstrip("/"), model, api_key_env, timeout
        self.name = f"openai:{model}"

    def complete(self, messages: list[dict[str, str]]) -> str:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0}).encode()
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        for attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    data = json.loads(response.read())
                return str(data["choices"][0]["message"]["content"])
            except (urllib.error.URLError, TimeoutError) as exc:
                if attempt == 2:
                    raise RuntimeError(f"judge endpoint {self.base_url} unreachable: {exc}") from exc
                time.sleep(2**attempt)
            except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
                raise RuntimeError(f"judge endpoint returned an unexpected body: {exc}") from exc
        raise AssertionError("unreachable")


class HFChatBackend:
    """A local HF chat model (safetensors only; remote code only when explicitly allowed)."""

    def __init__(self, model_path: str, trust_remote_code: bool = False, max_new_tokens: int = 256):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, use_safetensors=True,
                                                          trust_remote_code=trust_remote_code)
        self.max_new_tokens, self.name = max_new_tokens, f"hf:{model_path}"

    def complete(self, messages: list[dict[str, str]]) -> str:
        import torch

        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True)
        with torch.no_grad():
            out = self.model.generate(**encoded, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)


def make_judge(kind: str, **settings: Any) -> Judge:
    if kind == "openai":
        return Judge(OpenAIChatBackend(settings["base_url"], settings["model"], settings.get("api_key_env",
                                                                                            "REVERSO_JUDGE_API_KEY")))
    if kind == "hf":
        return Judge(HFChatBackend(settings["model_path"], settings.get("trust_remote_code", False)))
    raise ValueError(f"unknown judge backend {kind!r}; use 'hf' or 'openai'")
