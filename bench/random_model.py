"""Random-initialised Llama folders for GPU benchmarks: the default model's architecture or a larger shape.

Throughput depends on the architecture and the token counts, not on the weights, so a random model
with the real tokenizer measures what the trained one would (generation runs to ``max_new_tokens``).
The tokenizer (and, for ``smollm2-135m``, the config) come from a prepared model folder such as
``models/base``; only its small files are read, so a copy without ``model.safetensors`` will do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# name -> LlamaConfig fields; vocab and special tokens come from the tokenizer folder
SHAPES: dict[str, dict[str, int] | None] = {
    "smollm2-135m": None,  # the tokenizer folder's own config.json
    "0.5b": {"hidden_size": 1536, "intermediate_size": 4096, "num_hidden_layers": 20,
             "num_attention_heads": 24, "num_key_value_heads": 8},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8},
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def build(shape: str, tokenizer_dir: Path, out: Path, seed: int = 0) -> Path:
    """Write a safetensors folder with random weights of ``shape`` and ``tokenizer_dir``'s tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    fields = SHAPES[shape]
    if fields is None:
        config = LlamaConfig(**json.loads((tokenizer_dir / "config.json").read_text()))
    else:
        config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192, tie_word_embeddings=True,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, **fields)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    return out


def matmul_params(config: Any) -> int:
    """Weights a token multiplies through per forward pass: every linear layer plus the LM head."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    attention = 2 * h * h + 2 * h * config.num_key_value_heads * head_dim
    return layers * (attention + 3 * h * inter) + config.vocab_size * h


def forward_flops_per_token(config: Any, seq_len: int) -> float:
    """2 FLOPs per weight, plus causal attention scores and values (on average seq_len / 2 keys)."""
    return 2 * matmul_params(config) + 2 * config.num_hidden_layers * seq_len * config.hidden_size
