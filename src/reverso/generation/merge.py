"""A LoRA adapter merged into its base weights once, as a plain HF folder, cached by weights digest.

Backend ``vllm`` loads plain folders: evaluating a policy on it merges base + adapter here first (the
same merge the OpenVINO export does, generation/convert.py) and loads the merged folder. Written beside
the cache entry and renamed into place, so a crash never leaves a half model a later run would trust.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from reverso.generation.convert import _hash_folder, _merged_source
from reverso.io import publish_staged

MERGE_INFO = "reverso_merge.json"


def merge_digest(model_dir: str | Path, adapter: str | Path) -> str:
    digest = hashlib.sha256(b"merged-safetensors\n")
    _hash_folder(digest, Path(model_dir), "base")
    _hash_folder(digest, Path(adapter), "adapter")
    return digest.hexdigest()


def merged_model_dir(model_dir: str | Path, adapter: str | Path, cache_dir: str | Path) -> Path:
    """The cached merged folder for base ``model_dir`` + ``adapter``; merges only when it is missing."""
    model_dir, adapter, cache_dir = Path(model_dir), Path(adapter), Path(cache_dir)
    digest = merge_digest(model_dir, adapter)
    target = cache_dir / digest[:24]
    if (target / MERGE_INFO).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{digest[:24]}."))
    try:
        merged = _merged_source(model_dir, adapter, workdir)
        for extra in ("chat_template.jinja", "generation_config.json"):  # keep the base's template and stops
            if (model_dir / extra).exists() and not (merged / extra).exists():
                shutil.copy2(model_dir / extra, merged / extra)
        publish_staged(merged, target, MERGE_INFO, {"digest": digest, "base": str(model_dir), "adapter": str(adapter)})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target
