"""The generation contract every backend honours: settings in, ``n`` completions per conversation out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float  # 0 = greedy
    top_p: float
    max_new_tokens: int
    seed: int
    # > 1 lowers the score of tokens already in the sequence (HF / CTranslate2 / vLLM semantics)
    repetition_penalty: float = 1.0


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
