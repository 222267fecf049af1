"""Reference log-probs on disk, keyed by everything they depend on and nothing else.

The reference pass is the base model (LoRA adapters disabled) scoring each pair's chosen and
rejected tokens. Its numbers depend on: the base weights and their dtype; the token ids (the pairs'
content after the tokenizer and its chat template); how the collator cuts and pads them
(``max_length``, ``truncation_mode``, the pad token); and the numerics (bf16/fp16, attention
implementation). They do not depend on beta, gamma, the learning rate, the arm, the seed or the
LoRA shape, so every arm and seed trained on the same pairs shares one cache entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORMAT = 2  # bump when the facts or the file layout change


def _normal_name(name: str) -> str:
    """A base weight's name with PEFT's wrapping removed, so the LoRA shape does not change it."""
    return name.replace("base_model.model.", "", 1).replace(".base_layer", "")


def is_partitioned(tensor: Any) -> bool:
    """A DeepSpeed ZeRO-3 parameter: this rank holds a shard, the tensor itself is empty (``ds_*`` attributes)."""
    return hasattr(tensor, "ds_id") or (tensor.numel() == 0 and hasattr(tensor, "ds_shape"))


@contextmanager
def gathered(param: Any) -> Iterator[None]:
    """The full value of a ZeRO-3 parameter for the duration (a collective: every rank must call it, same order)."""
    try:
        import deepspeed
    except ImportError:
        raise RuntimeError(
            f"a parameter of shape {tuple(getattr(param, 'ds_shape', ()))} is partitioned by DeepSpeed ZeRO-3 but "
            "deepspeed is not importable here, so its value cannot be gathered; hashing its empty shard would give "
            "every model the same digest (pip install -r requirements-gpu.lock)") from None
    with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
        yield


def full_tensors(model: Any, names: Callable[[str], bool] = lambda _: True, key: Callable[[str], str] = str,
                 trainable_only: bool = False) -> Iterator[tuple[str, Any]]:
    """``(name, full tensor)`` sorted by ``key(name)``; a ZeRO-3 partitioned parameter is gathered one at a time.

    Under ZeRO-3 ``state_dict()`` and ``named_parameters()`` hold empty shards: hashing them would give
    every model the same digest. Plain tensors pass through unchanged (a digest is the same with and
    without ZeRO-3), and only one gathered parameter is held at a time (an 8B model never is whole).
    """
    if trainable_only:
        items = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    else:
        items = list(model.state_dict(keep_vars=True).items())
    for name, tensor in sorted(((n, t) for n, t in items if names(n)), key=lambda e: key(e[0])):
        if is_partitioned(tensor):
            with gathered(tensor):
                yield name, tensor.data.detach().cpu().clone()
        else:
            yield name, tensor.detach()


def base_weights_digest(model: Any) -> str:
    """SHA-256 of the base weights (names, dtypes, values), LoRA adapter weights left out (ZeRO-3: gathered)."""
    import torch

    digest = hashlib.sha256()
    for raw, tensor in full_tensors(model, lambda n: "lora_" not in n, key=_normal_name):
        tensor, name = tensor.cpu(), _normal_name(raw)
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
            tensor = tensor.view(torch.int16)
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_adapter_digest(model: Any, name: str) -> str | None:
    """SHA-256 of a frozen reference adapter's weights (``.<name>.`` LoRA tensors), or None without one.

    With a starting adapter (the improve loop's champion) the reference is base + that adapter, so its
    weights are part of the key; without one the key is unchanged (existing cache entries stay valid).
    """
    marker = f".{name}."
    found = sorted((n, t) for n, t in model.state_dict().items() if "lora_" in n and marker in n)
    if not found:
        return None
    digest = hashlib.sha256()
    for key, tensor in found:
        digest.update(key.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """The tokenizer as it shapes token ids: vocabulary, special tokens and chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    facts = {
        "class": type(tokenizer).__name__,
        "vocab": backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items()),
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "chat_template": tokenizer.chat_template,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def cache_facts(trainer: Any, dataset: Any, weights_digest: str) -> dict[str, Any]:
    """What the reference log-probs of ``dataset`` (tokenized pairs) depend on."""
    from datasets.fingerprint import Hasher

    args, model = trainer.args, trainer.model
    token_ids = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"]).to_dict()
    return {
        "format": FORMAT,
        "base_weights": weights_digest,
        "dtype": str(model.dtype),
        "max_length": args.max_length,
        "truncation_mode": args.truncation_mode,
        "pad_token_id": trainer.data_collator.pad_token_id,
        "bf16": bool(args.bf16),
        "fp16": bool(args.fp16),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        # train.forward: shared_prompt's packed rows round differently from the stock forward (~1e-4)
        "forward": getattr(trainer, "forward_mode", "stock"),
        "tokenizer": tokenizer_digest(trainer.processing_class),
        "pairs_tokens": Hasher.hash(token_ids),
        "rows": len(dataset),
    }


def cache_path(cache_dir: Path, facts: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_dir) / f"ref-logps-{key}.json"


def load(path: Path, rows: int) -> tuple[list[float], list[float]] | None:
    if not path.exists():
        return None
    cached = json.loads(path.read_text())
    if len(cached["chosen"]) != rows or len(cached["rejected"]) != rows:
        return None
    return cached["chosen"], cached["rejected"]


def save(path: Path, facts: dict[str, Any], chosen: list[float], rejected: list[float]) -> None:
    """Write atomically; the facts ride along so a cache entry explains itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"facts": facts, "chosen": chosen, "rejected": rejected}))
    os.replace(tmp, path)
