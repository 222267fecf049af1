"""JSONL in and out, with schema validation, quarantine and row accounting.

Bad rows are never dropped silently: each goes to ``<output>.quarantine.jsonl`` with its source
file, line number and reason, and every stage reports ``in == out + quarantined``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

RowT = TypeVar("RowT", bound=BaseModel)


class DataError(ValueError):
    """A stage cannot go on: the message names the file, the line and the field."""


@dataclass
class Quarantined:
    source: str
    line: int
    reason: str
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass
class ReadResult(Generic[RowT]):
    rows: list[RowT] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # source line of each row
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.quarantined)


def _describe_validation(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<row>"
        parts.append(f"field {where}: {item['msg']}")
    return "; ".join(parts)


def read_rows(
    path: str | Path,
    model: type[RowT],
    check: Callable[[RowT], str | None] | None = None,
) -> ReadResult[RowT]:
    """Read a JSONL file into ``model`` rows; bad lines are quarantined, never raised.

    ``check`` may add semantic validation: it returns a reason string to quarantine the row.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: input file does not exist (run the previous stage first)")
    result: ReadResult[RowT] = ReadResult()
    with path.open("rb") as handle:
        for number, raw_bytes in enumerate(handle, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw_bytes.decode("utf-8", errors="replace")
                result.quarantined.append(Quarantined(str(path), number, f"not UTF-8: {exc}", text))
                continue
            if not raw.strip():
                continue  # blank lines are layout, not rows
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                result.quarantined.append(Quarantined(str(path), number, f"bad JSON: {exc}", raw))
                continue
            if not isinstance(data, dict):
                reason = f"row must be a JSON object, got {type(data).__name__}"
                result.quarantined.append(Quarantined(str(path), number, reason, raw))
                continue
            try:
                row = model.model_validate(data)
            except ValidationError as err:
                reason = _describe_validation(err)
                result.quarantined.append(Quarantined(str(path), number, reason, raw))
                continue
            reason = check(row) if check else None
            if reason:
                result.quarantined.append(Quarantined(str(path), number, reason, raw))
                continue
            result.rows.append(row)
            result.lines.append(number)
    return result


def _dump(row: BaseModel | dict[str, Any]) -> str:
    data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    return json.dumps(data, ensure_ascii=False, sort_keys=False)


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(_dump(row) + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def iter_json_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Plain JSONL reader for files this project wrote itself (already validated)."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def quarantine_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".quarantine.jsonl")


def write_quarantine(output: str | Path, items: list[Quarantined]) -> Path:
    """Always write the quarantine file (empty when clean) so DVC can declare it as an out."""
    target = quarantine_path(output)
    write_jsonl(target, (item.to_json() for item in items))
    return target


def enforce_quarantine_limit(stage: str, total: int, quarantined: int, limit: float) -> None:
    if total and quarantined / total > limit:
        raise DataError(
            f"{stage}: {quarantined} of {total} input rows quarantined "
            f"({quarantined / total:.1%}) exceeds the limit of {limit:.1%}; see the quarantine file"
        )


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
