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
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")  # prompts use the base model's tokenizer
LOCAL_KEYS = {"base_model_name_or_path", "revision"}  # where an adapter was trained, not what it computes


def folder(params: Any, workspace: str | Path) -> Path | None:
    """The workspace's answer cache, or None when ``evaluate.reuse_answers`` is off."""
    return Path(workspace) / CACHE_DIR if params.reuse_answers else None


def base_digest(model_dir: Path) -> str:
    """The base model's weights, config and tokenizer files: the ones that key its OpenVINO export."""
    from reverso.generation.convert import _hash_folder

    digest = hashlib.sha256()
    _hash_folder(digest, Path(model_dir), "base")
    return digest.hexdigest()


def adapter_digest(adapter: Path) -> str:
    """An adapter's weights and config, without where it was trained (so the registry's copy of this
    round's adapter, with other paths and run files beside it, is the same adapter)."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = Path(adapter) / name
        if not path.is_file():
            raise FileNotFoundError(f"{adapter}: no {name} to identify the adapter by")
        if name == "adapter_config.json":
            config = {k: v for k, v in json.loads(path.read_text()).items() if k not in LOCAL_KEYS}
            digest.update(json.dumps(config, sort_keys=True).encode())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def answer_key(params: Any, base: str, adapter: Path | None, suites: dict[str, list[Any]]) -> str | None:
    """The cache key of one model's answers to ``suites`` under ``params`` (EvaluateParams), ``base`` its
    base_digest; None: do not cache."""
    if params.backend == "openai":
        return None
    from reverso.machine import machine_info

    machine = machine_info()
    facts = {
        "format": FORMAT, "model": base, "adapter": adapter_digest(adapter) if adapter else None,
        "suites": {name: [s.model_dump(mode="json") for s in items] for name, items in suites.items()},
        "decoding": {"backend": params.backend, "max_new_tokens": params.max_new_tokens, "seed": params.seed,
                     "batch_size": params.batch_size, "openvino": params.openvino.model_dump(mode="json")},
        "versions": machine["versions"], "cpu_flags": machine["cpu_flags"],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(cache_dir: Path, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(texts, finish) per suite when this model answered these prompts before, else None."""
    path = Path(cache_dir) / f"{key}.json"
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        return stored["texts"], stored["finish"]
    except (json.JSONDecodeError, KeyError):
        return None  # a damaged entry is answered again and overwritten


def save(cache_dir: Path, key: str, texts: dict[str, Any], finish: dict[str, Any]) -> None:
    write_json(Path(cache_dir) / f"{key}.json", {"texts": texts, "finish": finish})
