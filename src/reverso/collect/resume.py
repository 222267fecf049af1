"""Resumable sampling: every sampled batch is appended to a progress file outside the DVC outputs.

A killed ``collect`` (``kill -9``, OOM, power loss) reruns only the batches it had not finished. The
file is keyed by everything that shapes the samples (sessions, collect params, model files, sampler),
so a rerun with other inputs never reuses stale samples; it is deleted once the stage succeeds.
A half-written last line (the kill landed mid-append) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from reverso.config import CollectParams
from reverso.contracts import Response, Session

PROGRESS_DIR = Path(".reverso/collect-progress")


def _model_identity(model_dir: str | Path) -> list[Any]:
    """Path, size and mtime of the model's files: cheap, and changes whenever the weights change."""
    root = Path(model_dir)
    if not root.is_dir():
        return [str(model_dir)]
    return [str(root.resolve())] + [[p.name, p.stat().st_size, p.stat().st_mtime_ns]
                                    for p in sorted(root.iterdir()) if p.is_file()]


def fingerprint(sessions: list[Session], params: CollectParams, model_dir: str | Path | list[Any],
                sampler_name: str) -> str:
    """``model_dir``: a folder, or [base folder, adapter folder] when sampling with an adapter."""
    digest = hashlib.sha256()
    for session in sessions:
        digest.update(session.model_dump_json().encode())
    digest.update(params.model_dump_json().encode())
    folders = model_dir if isinstance(model_dir, list) else [model_dir]
    identity = [_model_identity(folder) for folder in folders]
    digest.update(json.dumps([identity[0] if len(identity) == 1 else identity, sampler_name]).encode())
    return digest.hexdigest()[:20]


class Progress:
    """Batches already sampled in an earlier, interrupted attempt: ``(turn, start) -> record``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[tuple[int, int], dict[str, Any]] = {}
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        self.done[(int(record["turn"]), int(record["start"]))] = record
                    except (ValueError, KeyError, TypeError):
                        continue  # the interrupted append: sample that batch again

    @classmethod
    def for_run(cls, root: Path, key: str) -> Progress:
        return cls(root / f"collect-{key}.jsonl")

    def get(self, turn: int, start: int) -> tuple[list[Response], dict[str, str]] | None:
        record = self.done.get((turn, start))
        if record is None:
            return None
        return [Response.model_validate(r) for r in record["responses"]], dict(record["best"])

    def record(self, turn: int, start: int, responses: list[Response], best: dict[str, str]) -> None:
        """Append one finished batch and force it to disk before sampling the next one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"turn": turn, "start": start, "best": best,
                           "responses": [r.model_dump(mode="json") for r in responses]}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def finish(self) -> None:
        """The stage succeeded: drop this run's progress and any left by older, abandoned inputs."""
        for stale in self.path.parent.glob("collect-*.jsonl"):
            stale.unlink(missing_ok=True)
