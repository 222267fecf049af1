"""Convert a base model (+ optional LoRA adapter, merged) to CTranslate2 once, cached by weights digest.

The cache key covers every weight and config file of the base folder and the adapter, the engine
version and the quantization, so a new policy (or a new engine) converts once and an unchanged
one never converts again. Conversions are written beside the cache entry and renamed into place,
so a crash never leaves a half model that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Files that define a model's outputs; tokenizer files are hashed too (they shape the vocabulary).
_HASHED_SUFFIXES = (".safetensors", ".json", ".jinja")
ENGINE_INFO = "reverso_engine.json"


def _hash_folder(digest: Any, folder: Path, label: str) -> None:
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_HASHED_SUFFIXES)):
        digest.update(f"{label}/{path.name}\n".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)


def weights_digest(model_dir: str | Path, adapter: str | Path | None, compute_type: str) -> str:
    """sha256 over base (+ adapter) files, the engine version and the quantization."""
    import ctranslate2

    digest = hashlib.sha256(f"ctranslate2={ctranslate2.__version__};quantization={compute_type}\n".encode())
    _hash_folder(digest, Path(model_dir), "base")
    if adapter is not None:
        _hash_folder(digest, Path(adapter), "adapter")
    return digest.hexdigest()


def _merged_source(model_dir: Path, adapter: Path, workdir: Path) -> Path:
    """Merge the LoRA adapter into the base weights and save a plain HF folder to convert."""
    from reverso.prepare_model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, adapter)
    merged = workdir / "merged"
    model.save_pretrained(merged, safe_serialization=True)
    tokenizer.save_pretrained(merged)
    return merged


def engine_model_dir(model_dir: str | Path, adapter: str | Path | None, compute_type: str, cache_dir: str | Path) -> Path:
    """The cached CTranslate2 folder for this base (+ adapter); converts only when it is missing."""
    from ctranslate2.converters import TransformersConverter

    model_dir, cache_dir = Path(model_dir), Path(cache_dir)
    digest = weights_digest(model_dir, adapter, compute_type)
    target = cache_dir / digest[:24]
    if (target / ENGINE_INFO).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{digest[:24]}."))
    try:
        source = model_dir if adapter is None else _merged_source(model_dir, Path(adapter), workdir)
        staging = workdir / "engine"
        # trust_remote_code stays off: only architectures transformers ships are converted.
        TransformersConverter(str(source), low_cpu_mem_usage=True).convert(str(staging), quantization=compute_type)
        info = {"digest": digest, "base": str(model_dir), "adapter": str(adapter) if adapter else None,
                "quantization": compute_type}
        (staging / ENGINE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        try:
            staging.rename(target)
        except OSError:  # another process converted the same weights first: keep theirs
            if not (target / ENGINE_INFO).exists():
                raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target
