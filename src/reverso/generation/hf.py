"""HF ``model.generate``, batched and left-padded: the reference backend (greedy when temperature is 0)."""

from __future__ import annotations

import time
from typing import Any

from tqdm import tqdm

from reverso.generation.base import Completion, Conversation, GenerationSettings, completion_from_ids, prompt_ids, stop_ids


class GeneratedTokenPenalty:
    """The project's penalty semantics for HF ``generate`` (a ``LogitsProcessor``), exactly as OpenVINO
    applies its presence and frequency penalties: only tokens this reply has generated count (never the
    prompt's). First the logit of every such token moves ``presence`` toward zero, then ``frequency``
    times its count toward zero (toward zero: a logit >= 0 drops, a negative one rises)."""

    def __init__(self, presence: float, frequency: float, prompt_length: int):
        self.presence, self.frequency, self.prompt_length = presence, frequency, prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros(scores.shape, dtype=scores.dtype, device=scores.device)
        counts.scatter_add_(1, generated, torch.ones(generated.shape, dtype=scores.dtype, device=scores.device))
        seen = counts > 0
        for amount in (self.presence * seen.to(scores.dtype), self.frequency * counts):
            scores = torch.where(seen, scores - torch.where(scores >= 0, amount, -amount), scores)
        return scores


class HFSampler:
    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16, name: str = "hf", progress: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.name, self.progress = batch_size, name, progress
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, conversations: list[Conversation], n: int, settings: GenerationSettings) -> list[list[Completion]]:
        import torch

        prompts = [prompt_ids(self.tokenizer, c) for c in conversations]
        stops = stop_ids(self.tokenizer)
        per_batch = max(1, self.batch_size // n)  # rows in flight = prompts x samples
        results: list[list[Completion]] = []
        bar = tqdm(total=len(prompts), desc=f"sampling x{n}", unit="prompt", disable=not self.progress)
        generated, started = 0, time.perf_counter()
        for start in range(0, len(prompts), per_batch):
            batch = prompts[start : start + per_batch]
            enc = self.tokenizer.pad({"input_ids": batch}, return_tensors="pt", padding=True).to(self.model.device)
            torch.manual_seed(settings.seed + start)
            sample = settings.temperature > 0
            kwargs: dict[str, Any] = {"do_sample": sample, "max_new_tokens": settings.max_new_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id,
                                      "num_return_sequences": n if sample else 1}
            if sample:
                kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            if settings.presence_penalty or settings.frequency_penalty:
                kwargs["logits_processor"] = [GeneratedTokenPenalty(settings.presence_penalty, settings.frequency_penalty,
                                                                    enc["input_ids"].shape[1])]
            with torch.no_grad():
                out = self.model.generate(**enc, **kwargs)
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for row, ids in enumerate(batch):
                rows = [new_tokens[row * n + k] if sample else new_tokens[row] for k in range(n)]
                completions = [completion_from_ids(self.tokenizer, seq.tolist(), len(ids), stops) for seq in rows]
                generated += sum(c.completion_tokens for c in completions)
                results.append(completions)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{generated / max(time.perf_counter() - started, 1e-9):.1f}")
        bar.close()
        return results
