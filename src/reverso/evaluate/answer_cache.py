"""Greedy answers, reused: a model that answered the same prompts with the same settings answers the same.

Evaluation is most of an improve round's time, and most of it is spent re-answering: the base
model answers the same validation draw every round, and round k's champion is round k-1's
challenger, which answered that draw already. Greedy decoding is deterministic for a given model,
prompts, decoding settings, engine version and CPU (kernels round differently on other CPUs), so
the answers of one (model, prompts, settings, machine) are stored once under
``.reverso/answer-cache/<key>.json`` and reused; scoring always runs again.

The key covers everything that moves a greedy answer: the weights, config and tokenizer (chat
template) of the base model, the adapter's weights and config (not its local paths or run ids, so
a champion downloaded from the registry hits the answers of the same adapter trained this round),
every turn of every suite, the decoding settings, the engine's package versions and the CPU's
flags. Remote backends (``openai``) are never cached: the server's model can change under its name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reverso.io import write_json

CACHE_DIR = Path(".reverso/answer-cache")
FORMAT = 1
WEIGHT_FILES = ("*.safetensors", "config.json", "generation_config.json", "tokenizer*", "special_tokens_map.json",
                "chat_template*")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")  # prompts use the base model's tokenizer
LOCAL_KEYS = {"base_model_name_or_path", "revision"}  # where an adapter was trained, not what it computes


def _file_digest(path: Path) -> str:
    if path.name == "adapter_config.json":
        config = {k: v for k, v in json.loads(path.read_text()).items() if k not in LOCAL_KEYS}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(directory: Path, adapter: bool = False) -> str:
    """What in a model (or adapter) folder decides its answers (top level: the layout HF and PEFT save)."""
    patterns = ADAPTER_FILES if adapter else WEIGHT_FILES
    files = sorted({p for pattern in patterns for p in Path(directory).glob(pattern) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"{directory}: no model weights or config to identify the model by")
    return hashlib.sha256(json.dumps({p.name: _file_digest(p) for p in files}, sort_keys=True).encode()).hexdigest()


def answer_key(params: Any, model_dir: Path, adapter: Path | None, suites: dict[str, list[Any]]) -> str | None:
    """The cache key of one model's answers to ``suites`` under ``params`` (EvaluateParams); None: do not cache."""
    if params.backend == "openai":
        return None
    from reverso.machine import machine_info

    machine = machine_info()
    facts = {
        "format": FORMAT, "model": model_digest(model_dir), "adapter": model_digest(adapter, adapter=True) if adapter else None,
        "suites": {name: [s.model_dump(mode="json") for s in items] for name, items in suites.items()},
        "decoding": {"backend": params.backend, "max_new_tokens": params.max_new_tokens, "seed": params.seed,
                     "batch_size": params.batch_size, "openvino": params.openvino.model_dump(mode="json")},
        "versions": machine["versions"], "cpu_flags": machine["cpu_flags"],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(cache_dir: Path, key: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(texts, finish) per suite when this model answered these prompts before, else None."""
    path = Path(cache_dir) / f"{key}.json"
    if key is None or not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        return stored["texts"], stored["finish"]
    except (json.JSONDecodeError, KeyError):
        return None  # a damaged entry is answered again and overwritten


def save(cache_dir: Path, key: str | None, texts: dict[str, Any], finish: dict[str, Any]) -> None:
    if key is not None:
        write_json(Path(cache_dir) / f"{key}.json", {"texts": texts, "finish": finish})
