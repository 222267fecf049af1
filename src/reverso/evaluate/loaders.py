"""Loaders for official benchmark files a user already has (nothing is downloaded at run time).

Each loader returns sessions (``render_rules=False``: the prompts state their own constraints) and
the rows it could not evaluate, with the reason — e.g. IFBench ids the engine does not know are
reported as unsupported, never silently skipped.

- IFEval ``input_data.jsonl``: ``key``, ``prompt``, ``instruction_id_list``, ``kwargs``.
- IFBench test JSONL: the same shape as IFEval.
- Multi-IF CSV: ``turn_k_prompt`` (a JSON message or plain text), ``turn_k_instruction_id_list``,
  ``turn_k_kwargs`` (JSON lists; kwargs entries may themselves be JSON strings). Each turn's list is
  that turn's full active set, as Multi-IF publishes it.
- SysBench JSON, either the released shape (``system_id``, ``system_prompt``, ``messages`` with
  roles, ``prompt_infos[user text].criteria`` = ``{"1": {"criteria_content", "criteria_type"}}``)
  or the compact ``{"id", "system_prompt", "messages": [{"content", "criteria"}]}``. Criteria are
  soft text, judged through ``soft:criteria`` constraints by ``evaluate.judge``; without a judge the
  suite is reported as not scored.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.contracts import ConstraintSpec, Session, Turn
from reverso.io import DataError, iter_text_lines, parse_json_text, surrogate_problem
from reverso.limits import MAX_TEXT_CHARS


@dataclass
class Loaded:
    sessions: list[Session] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # {"row", "reason"}
    lines: list[int] = field(default_factory=list)  # the row (line, CSV record, JSON item) of each session


class Malformed(ValueError):
    """One row of an official file cannot be read; the message says which field and why."""


def _no_surrogates(value: Any, name: str) -> Any:
    problem = surrogate_problem(value, name)
    if problem:
        raise Malformed(problem)
    return value


def _json(value: Any) -> Any:
    """A list/object cell as published: JSON, or a Python literal (single quotes) as some files use.

    ``ast.literal_eval`` only builds literals (no names, calls or attributes), so no code runs.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] not in ("[", "{", '"', "'"):
        return value
    try:
        return _no_surrogates(json.loads(text), "cell")
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, Malformed):
            raise
    try:
        return _no_surrogates(ast.literal_eval(text), "cell")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed(f"neither JSON nor a Python literal ({type(exc).__name__})") from None


def _str_list(value: Any, what: str) -> list[str]:
    value = _json(value)
    if value is None or value == "":
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise Malformed(f"{what}: expected a list of strings, got {type(value).__name__}")
    return list(value)


def _kwargs_list(value: Any, count: int, what: str) -> list[Any]:
    """One kwargs object per id; a missing column means no kwargs; any other length is an error."""
    value = _json(value)
    if value is None or value == "" or value == []:
        return [{}] * count
    if not isinstance(value, (list, tuple)):
        raise Malformed(f"{what}: expected a list, got {type(value).__name__}")
    if len(value) != count:
        raise Malformed(f"{what}: {len(value)} entries for {count} instruction ids (lists must align)")
    return list(value)


def _specs(ids: list[str], kwargs: list[Any]) -> tuple[list[ConstraintSpec], list[str]]:
    """Validated specs, plus one problem string per id the engine rejects."""
    specs, problems = [], []
    for cid, raw in zip(ids, kwargs, strict=True):
        try:
            value = _json(raw) or {}
            if not isinstance(value, dict):
                kind = type(value).__name__
                raise engine.ConstraintError(f"constraint {cid!r}: kwargs must be an object, got {kind}")
            constraint = engine.parse({"id": cid, "kwargs": value})
            specs.append(ConstraintSpec(**constraint.spec()))
        except (engine.ConstraintError, Malformed) as exc:
            problems.append(str(exc).split(";")[0][:300])
    return specs, problems


def _session(session_id: str, system: str, turns: list[Turn]) -> Session:
    return Session(session_id=session_id, system=system, turns=turns, split="eval", seed=0, render_rules=False)


def _prompt_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"{what}: expected non-empty text, got {type(value).__name__}")
    if len(value) > MAX_TEXT_CHARS:
        raise Malformed(f"{what}: {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    return value


def load_ifeval(path: str | Path, name: str = "ifeval") -> Loaded:
    loaded = Loaded()
    for number, line, problem in iter_text_lines(path):
        if problem:
            loaded.unsupported.append({"row": number, "reason": f"malformed row: {problem}"})
            continue
        row, problem = parse_json_text(line)
        if problem or not isinstance(row, dict):
            reason = problem or f"row must be a JSON object, got {type(row).__name__}"
            loaded.unsupported.append({"row": number, "reason": f"malformed row: {reason}"})
            continue
        try:
            _no_surrogates(row, "row")
            if "instruction_id_list" not in row or "prompt" not in row:
                raise Malformed(f"missing field {'prompt' if 'prompt' not in row else 'instruction_id_list'}")
            ids = _str_list(row["instruction_id_list"], "instruction_id_list")
            specs, problems = _specs(ids, _kwargs_list(row.get("kwargs"), len(ids), "kwargs"))
            prompt = _prompt_text(row["prompt"], "prompt")
            key = row.get("key", number)
            if not isinstance(key, (int, str)) or len(str(key)) > 200:
                raise Malformed("key: expected an integer or a short string")
        except Malformed as exc:
            loaded.unsupported.append({"row": number, "reason": f"malformed row: {exc}"})
            continue
        if problems:
            loaded.unsupported.append({"row": number, "key": row.get("key"), "reason": "; ".join(problems)})
            continue
        turn = Turn(user=prompt, constraints=specs, cumulative=False)
        loaded.sessions.append(_session(f"{name}-{key}", "", [turn]))
        loaded.lines.append(number)
    return loaded


def load_ifbench(path: str | Path) -> Loaded:
    return load_ifeval(path, name="ifbench")


def _message_text(raw: str) -> str:
    value = _json(raw)
    return str(value.get("content", "")) if isinstance(value, dict) else str(value)


def _read_text(path: str | Path) -> str:
    """A whole official file as text; undecodable bytes become lone surrogates, caught per row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: input file does not exist or is not a file")
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: file is UTF-16 encoded; save it as UTF-8")
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")


def _not_utf8(values: Any) -> bool:
    return any(isinstance(v, str) and any("\udc80" <= ch <= "\udcff" for ch in v) for v in values)


def _multi_if_turns(row: dict[str, Any]) -> tuple[list[Turn], list[str]]:
    turns, problems = [], []
    k = 1
    while row.get(f"turn_{k}_prompt"):
        try:
            ids = _str_list(row.get(f"turn_{k}_instruction_id_list"), "instruction_id_list")
            kwargs = _kwargs_list(row.get(f"turn_{k}_kwargs"), len(ids), "kwargs")
            specs, bad = _specs(ids, kwargs)
            user = _prompt_text(_message_text(row[f"turn_{k}_prompt"]), "prompt")
        except Malformed as exc:
            specs, bad, user = [], [f"malformed: {exc}"], "(empty)"
        problems += [f"turn {k}: {p}" for p in bad]
        turns.append(Turn(user=user, constraints=specs, cumulative=False))
        k += 1
    return turns, problems


def load_multi_if(path: str | Path) -> Loaded:
    loaded = Loaded()
    csv.field_size_limit(max(MAX_TEXT_CHARS * 4, 131072))
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV header: {exc}") from None
    if not header or not any(h.startswith("turn_1_") for h in header):
        raise DataError(f"{path}: not a Multi-IF CSV (no turn_1_prompt column in the header)")
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            loaded.unsupported.append({"row": start, "reason": f"malformed CSV record: {exc}"})
            continue
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            loaded.unsupported.append({"row": start, "reason": f"{len(cells)} fields; the header has {len(header)}"})
            continue
        if _not_utf8(cells):
            loaded.unsupported.append({"row": start, "reason": "not UTF-8"})
            continue
        row = dict(zip(header, cells, strict=True))
        turns, problems = _multi_if_turns(row)
        if problems or not turns:
            loaded.unsupported.append({"row": start, "reason": "; ".join(problems) or "no turns"})
            continue
        loaded.sessions.append(_session(f"multi_if-{(row.get('key') or str(start))[:200]}", "", turns))
        loaded.lines.append(start)
    return loaded


def _criteria_texts(criteria: Any) -> list[str]:
    values = list(criteria.values()) if isinstance(criteria, dict) else list(criteria or [])
    return [str(v.get("criteria_content", "")) if isinstance(v, dict) else str(v) for v in values]


def _sysbench_turns(item: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(user text, criteria texts) per turn, from either SysBench shape."""
    if "prompt_infos" in item:  # released shape: criteria keyed by the user message's text
        users = [str(m["content"]) for m in item["messages"] if m.get("role") == "user"]
        return [(text, _criteria_texts(item["prompt_infos"][text]["criteria"])) for text in users]
    return [(str(m["content"]), _criteria_texts(m.get("criteria"))) for m in item["messages"]]


def load_sysbench(path: str | Path) -> Loaded:
    loaded = Loaded()
    data = _json_document(path)
    for index, item in enumerate(data):
        try:
            _no_surrogates(item, "item")
            turns = []
            for user, texts in _sysbench_turns(item):
                if not texts:
                    raise ValueError(f"turn {len(turns) + 1} has no criteria")
                specs, problems = _specs(["soft:criteria"] * len(texts), [{"text": t} for t in texts])
                if problems:
                    raise ValueError(problems[0])
                turns.append(Turn(user=user, constraints=specs, cumulative=False))
            if not turns:
                raise ValueError("no user turns")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            loaded.unsupported.append({"row": index, "reason": f"malformed SysBench item: {exc}"})
            continue
        key = item.get("system_id", item.get("id", index))
        loaded.sessions.append(_session(f"sysbench-{key}", str(item.get("system_prompt", "")), turns))
        loaded.lines.append(index)
    return loaded


def _json_document(path: str | Path) -> list[Any]:
    """A whole JSON file that must hold a list of items; unusable as a whole -> DataError."""
    text = _read_text(path)
    if _not_utf8([text]):
        raise DataError(f"{path}: not UTF-8 text")
    data, problem = parse_json_text(text)
    if problem:
        raise DataError(f"{path}: {problem}")
    if not isinstance(data, list):
        raise DataError(f"{path}: top level must be a JSON list of items, got {type(data).__name__}")
    return data


LOADERS = {"ifeval": load_ifeval, "multi_if": load_multi_if, "ifbench": load_ifbench, "sysbench": load_sysbench}
