"""The generation contract every backend honours: settings in, ``n`` completions per conversation out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reverso.errors import ReversoError

Conversation = list[dict[str, str]]
HF_DEFAULT_TOP_K = 50


class GenerationError(ReversoError, RuntimeError):
    """A generation backend could not run (server down or refusing, engine missing); the message says why."""


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float  # 0 = greedy
    top_p: float
    max_new_tokens: int
    seed: int
    # The project's one penalty semantics (OpenVINO's presence penalty; HF gets it as a logits processor):
    # the logit of every token already *generated* in this reply moves this much toward zero. Prompt
    # tokens never count, so the end-of-turn token the chat template puts in the prompt is not pushed
    # down (HF's multiplicative repetition_penalty counts the prompt: it cut 20/20 replies at the cap).
    # vLLM and OpenAI servers subtract it (OpenAI's form): the same wherever the logit is >= 0.
    presence_penalty: float = 0.0
    # Then, the same way, this times the number of times the token was generated (loops pay more).
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


class Sampler(Protocol):
    name: str

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]: ...


def prompt_ids(tokenizer: Any, conversation: Conversation) -> list[int]:
    """The chat-templated prompt (generation prompt appended): the exact ids every local backend feeds."""
    ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def default_top_k(model_dir: Any) -> int:
    """Top-k as HF ``generate`` samples: the model's generation config, else transformers' default 50."""
    from transformers import GenerationConfig

    try:
        top_k = GenerationConfig.from_pretrained(str(model_dir)).top_k
    except OSError:
        top_k = None
    return HF_DEFAULT_TOP_K if top_k is None else int(top_k)


def request_seed(seed: int, index: int) -> int:
    """The RNG seed of prompt ``index`` in a call seeded ``seed``: distinct per prompt, fixed per call."""
    return (seed * 1_000_003 + index) % 2**32


def stop_ids(tokenizer: Any) -> set[int]:
    """Token ids that end a completion: EOS (one or several) and the pad token."""
    eos = tokenizer.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos])
    if tokenizer.pad_token_id is not None:
        ids.add(tokenizer.pad_token_id)
    return {int(i) for i in ids if i is not None}


def completion_from_ids(tokenizer: Any, ids: Iterable[int], prompt_tokens: int, stops: set[int]) -> Completion:
    """Cut at the first stop token: "stop" when one was generated, "length" when the cap was hit."""
    ids = list(ids)
    end = next((i for i, t in enumerate(ids) if t in stops), None)
    kept = ids if end is None else ids[:end]
    text = tokenizer.decode(kept, skip_special_tokens=True).strip()
    return Completion(text, "length" if end is None else "stop", prompt_tokens, len(kept))


def generated_tokens(outputs: Sequence[Sequence[Completion]]) -> int:
    return sum(c.completion_tokens for row in outputs for c in row)
