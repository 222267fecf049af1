"""Export a base model (+ optional LoRA adapter, merged) to OpenVINO IR once, cached by weights digest.

The cache key covers every weight and config file of the base folder and the adapter, the runtime
version and the weight format, so a new policy (or a new runtime) exports once and an unchanged
one never exports again. Exports are written beside the cache entry and renamed into place, so a
crash never leaves a half model that a later run would trust.

The exporter (optimum-intel) pins a transformers release other than the training stack's, so it
lives in its own environment, which ``make setup`` builds from
``requirements-export.lock`` (its optimum-cli linked beside the venv's python); it is run as a subprocess
with an argument list.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from reverso.io import publish_staged

# Files that define a model's outputs; tokenizer files are hashed too (they shape the vocabulary).
_HASHED_SUFFIXES = (".safetensors", ".json", ".jinja")
EXPORT_INFO = "reverso_export.json"


class ExportError(RuntimeError):
    """The OpenVINO export could not run or failed; the message says how to fix it."""


def _hash_folder(digest: Any, folder: Path, label: str) -> None:
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_HASHED_SUFFIXES)):
        digest.update(f"{label}/{path.name}\n".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)


def weights_digest(model_dir: str | Path, adapter: str | Path | None, weight_format: str) -> str:
    """sha256 over base (+ adapter) files, the OpenVINO runtime version and the weight format."""
    import openvino

    digest = hashlib.sha256(f"openvino={openvino.__version__};weights={weight_format}\n".encode())
    _hash_folder(digest, Path(model_dir), "base")
    if adapter is not None:
        _hash_folder(digest, Path(adapter), "adapter")
    return digest.hexdigest()


def _merged_source(model_dir: Path, adapter: Path, workdir: Path) -> Path:
    """Merge the LoRA adapter into the base weights and save a plain HF folder to export."""
    from reverso.prepare_model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, adapter)
    merged = workdir / "merged"
    model.save_pretrained(merged, safe_serialization=True)
    tokenizer.save_pretrained(merged)
    return merged


def exporter_command(exporter: str | Path, source: Path, target: Path, weight_format: str) -> list[str]:
    """optimum-intel's export as an argument list (never a shell string); no remote code is run."""
    return [str(exporter), "export", "openvino", "--model", str(source), "--task", "text-generation-with-past",
            "--weight-format", weight_format, str(target)]


def default_exporter() -> Path:
    """``$REVERSO_OPENVINO_EXPORTER``, else an ``optimum-cli`` beside this interpreter, else one on PATH.

    ``make setup`` builds the export environment and links its optimum-cli beside the venv's python, so
    the project's code never names a venv.
    """
    import sys

    configured = os.environ.get("REVERSO_OPENVINO_EXPORTER")
    if configured:
        return Path(configured)
    beside = Path(sys.executable).parent / "optimum-cli"
    found = shutil.which("optimum-cli")
    return Path(found) if found and not beside.exists() else beside


def run_export(exporter: str | Path | None, source: Path, target: Path, weight_format: str) -> None:
    exporter = Path(exporter) if exporter else default_exporter()
    if not exporter.exists():
        raise ExportError(f"OpenVINO exporter {exporter} not found: run `make setup` (it builds the export "
                          "environment from requirements-export.lock and links its optimum-cli beside this "
                          "python), or point openvino.exporter or $REVERSO_OPENVINO_EXPORTER at an optimum-cli")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(exporter_command(exporter, source, target, weight_format), env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (target / "openvino_model.xml").exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ExportError(f"OpenVINO export of {source} failed (exit {done.returncode}):\n{tail}")


def openvino_model_dir(model_dir: str | Path, adapter: str | Path | None, weight_format: str,
                       cache_dir: str | Path, exporter: str | Path | None = None) -> Path:
    """The cached OpenVINO folder for this base (+ adapter); exports only when it is missing."""
    model_dir, cache_dir = Path(model_dir), Path(cache_dir)
    digest = weights_digest(model_dir, adapter, weight_format)
    target = cache_dir / digest[:24]
    if (target / EXPORT_INFO).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{digest[:24]}."))
    try:
        source = model_dir if adapter is None else _merged_source(model_dir, Path(adapter), workdir)
        staging = workdir / "openvino"
        run_export(exporter, source, staging, weight_format)
        publish_staged(staging, target, EXPORT_INFO, {"digest": digest, "base": str(model_dir),
                                                      "weight_format": weight_format,
                                                      "adapter": str(adapter) if adapter else None})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target
