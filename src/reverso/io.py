"""JSONL in and out, with schema validation, quarantine and row accounting.

Bad rows are never dropped silently: each goes to ``<output>.quarantine.jsonl`` with its source
file, line number and reason, and every stage reports ``in == out + quarantined``.

Reading is hostile-input safe: a UTF-8 byte-order mark and CRLF line ends are accepted; invalid
UTF-8, NUL bytes, over-long lines (``MAX_LINE_BYTES``), bad or too deeply nested JSON, duplicate
keys and non-object rows are quarantined with the line number; nothing raises but a missing or
wholly unusable (UTF-16) file. Writing is atomic (temporary file + rename) and a full disk is a
one-line ``DataError``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from reverso.errors import ReversoError

RowT = TypeVar("RowT", bound=BaseModel)
MAX_LINE_BYTES = 1 << 20  # one JSONL row; a longer line is quarantined without being held in memory
RAW_KEEP = 2000  # characters of a bad row kept in the quarantine file
BOM = b"\xef\xbb\xbf"


class DataError(ReversoError, ValueError):
    """A stage cannot go on: the message names the file, the line and the field."""


@dataclass
class Quarantined:
    source: str
    line: int
    reason: str
    raw: str
    field: str = ""  # dotted path of the offending field, when one field is at fault

    def to_json(self) -> dict[str, Any]:
        data = {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw[:RAW_KEEP]}
        if self.field:
            data["field"] = self.field
        return data


@dataclass
class ReadResult(Generic[RowT]):
    rows: list[RowT] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # source line of each row
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.quarantined)


def _describe_validation(err: ValidationError) -> tuple[str, str]:
    """(first field, reason) of a pydantic error, reasons naming every field at fault."""
    parts, fields = [], []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<row>"
        fields.append(where)
        parts.append(f"field {where}: {item['msg']}")
    return (fields[0] if fields else ""), "; ".join(parts)


def _readline_bounded(handle: IO[bytes]) -> tuple[bytes, bool]:
    """One line of at most MAX_LINE_BYTES; (line, too_long). An over-long rest is skipped, not stored."""
    line = handle.readline(MAX_LINE_BYTES + 1)
    if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
        return line, False
    while True:  # discard the remainder of the over-long line chunk by chunk
        rest = handle.readline(MAX_LINE_BYTES)
        if not rest or rest.endswith(b"\n"):
            return line, True


def iter_text_lines(path: str | Path) -> Iterator[tuple[int, str | None, str]]:
    """``(line number, text, problem)`` for every non-blank line.

    When ``problem`` is set the line is unusable and ``text`` is only a printable excerpt of it.

    Raises DataError only when the file is missing or unusable as a whole.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: input file does not exist (run the previous stage first)")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a JSONL file")
    with path.open("rb") as handle:
        head = handle.read(4)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise DataError(f"{path}: file is UTF-16 encoded; save it as UTF-8 (JSON Lines)")
        handle.seek(len(BOM) if head.startswith(BOM) else 0)  # a UTF-8 BOM is an editor's mark, not data
        number = 0
        while True:
            raw_bytes, too_long = _readline_bounded(handle)
            if not raw_bytes:
                return
            number += 1
            excerpt = raw_bytes[:RAW_KEEP].decode("utf-8", errors="replace").replace("\x00", "\\x00")
            if too_long:
                yield number, excerpt, f"line longer than the limit of {MAX_LINE_BYTES} bytes"
                continue
            if b"\x00" in raw_bytes:
                yield number, excerpt, "contains NUL bytes (binary data, not a JSON line)"
                continue
            try:
                text = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, excerpt, f"not UTF-8: {exc}"
                continue
            if text.strip():  # blank lines (and CR-only lines) are layout, not rows
                yield number, text, ""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r} in one object")
        data[key] = value
    return data


def parse_json_text(text: str) -> tuple[Any, str]:
    """(value, problem): strict JSON (no duplicate keys, bounded nesting), never raises."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys), ""
    except json.JSONDecodeError as exc:
        return None, f"bad JSON: {exc}"
    except RecursionError:
        return None, "bad JSON: nested too deeply"
    except ValueError as exc:  # duplicate keys, over-long integers
        return None, f"bad JSON: {exc}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_field(value: Any, name: str = "row") -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, or None.

    JSON's ``"\\ud800"`` escape decodes to one: valid JSON, but not Unicode text that can be
    tokenized or written back as UTF-8. Iterative, so deep nesting cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [(name, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"{where} (a key)"
                stack.append((f"{where}.{key}" if where != "row" else str(key), inner))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}.{index}", inner) for index, inner in enumerate(item))
    return None


def surrogate_problem(value: Any, name: str = "row") -> str:
    """A reason naming the field that holds a lone surrogate, or "" when there is none."""
    where = surrogate_field(value, name)
    return "" if where is None else f"{where}: contains a lone surrogate (an unpaired \\ud800-\\udfff escape), not Unicode text"


def read_rows(
    path: str | Path,
    model: type[RowT],
    check: Callable[[RowT], str | None] | None = None,
) -> ReadResult[RowT]:
    """Read a JSONL file into ``model`` rows; bad lines are quarantined, never raised.

    ``check`` may add semantic validation: it returns a reason string to quarantine the row.
    """
    path = Path(path)
    result: ReadResult[RowT] = ReadResult()
    for number, raw, problem in iter_text_lines(path):
        if problem:
            result.quarantined.append(Quarantined(str(path), number, problem, raw))
            continue
        data, problem = parse_json_text(raw)
        if problem:
            result.quarantined.append(Quarantined(str(path), number, problem, raw))
            continue
        if not isinstance(data, dict):
            reason = f"row must be a JSON object, got {type(data).__name__}"
            result.quarantined.append(Quarantined(str(path), number, reason, raw))
            continue
        problem = surrogate_problem(data)
        if problem:
            result.quarantined.append(Quarantined(str(path), number, problem, raw, problem.split(":", 1)[0]))
            continue
        try:
            row = model.model_validate(data)
        except ValidationError as err:
            where, reason = _describe_validation(err)
            result.quarantined.append(Quarantined(str(path), number, reason, raw, where))
            continue
        except RecursionError:
            result.quarantined.append(Quarantined(str(path), number, "row nested too deeply", raw))
            continue
        try:
            reason = check(row) if check else None
        except Exception as exc:  # a checker must never turn one bad row into a crash of the stage
            reason = f"could not check row: {type(exc).__name__}: {exc}"
        if reason:
            result.quarantined.append(Quarantined(str(path), number, reason, raw))
            continue
        result.rows.append(row)
        result.lines.append(number)
    return result


def _dump(row: BaseModel | dict[str, Any]) -> str:
    data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    return json.dumps(data, ensure_ascii=False, sort_keys=False)


def disk_full_error(path: str | Path, exc: OSError) -> DataError:
    return DataError(f"no space left on the device while writing {path} ({exc.strerror}); free space "
                     f"on {Path(path).resolve().parent} and rerun: nothing half-written was kept")


def atomic_write(path: str | Path, write: Callable[[IO[str]], None]) -> None:
    """Write through a temporary file beside ``path``, then rename: readers never see half a file.

    A full disk (ENOSPC, EDQUOT) becomes a DataError naming the file; the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path, exc) from None
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path, exc) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves half a file."""
    count = 0

    def write(handle: IO[str]) -> None:
        nonlocal count
        for row in rows:
            handle.write(_dump(row) + "\n")
            count += 1

    atomic_write(path, write)
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
    """A JSON document (metrics, reports), written atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda handle: handle.write(text))


def publish_staged(staging: Path, target: Path, marker: str, info: dict[str, Any]) -> None:
    """Write ``info`` to ``staging/marker``, then move ``staging`` to ``target`` in one rename (a cache entry
    is complete or absent). When another process published the same ``target`` first, keep theirs."""
    (staging / marker).write_text(json.dumps(info, indent=2) + "\n")
    try:
        staging.rename(target)
    except OSError:
        if not (target / marker).exists():
            raise
