"""Loaders for official benchmark files a user already has (nothing is downloaded at run time).

Each loader returns sessions (``render_rules=False``: the prompts state their own constraints) and
the rows it could not evaluate, with the reason — e.g. IFBench ids the engine does not know are
reported as unsupported, never silently skipped.

- IFEval ``input_data.jsonl``: ``key``, ``prompt``, ``instruction_id_list``, ``kwargs``.
- IFBench test JSONL: the same shape as IFEval.
- Multi-IF CSV: ``turn_k_prompt`` (a JSON message or plain text), ``turn_k_instruction_id_list``,
  ``turn_k_kwargs`` (JSON lists; kwargs entries may themselves be JSON strings). Each turn's list is
  that turn's full active set, as Multi-IF publishes it.
- SysBench-style JSON: a list of ``{"id", "system_prompt", "messages": [{"content", "criteria"}]}``;
  criteria are soft text, judged through ``soft:criteria`` constraints.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.contracts import ConstraintSpec, Session, Turn


@dataclass
class Loaded:
    sessions: list[Session] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # {"row", "reason"}


def _json(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{\"":
            return json.loads(text)
    return value


def _specs(ids: list[str], kwargs: list[Any]) -> tuple[list[ConstraintSpec], list[str]]:
    """Validated specs, plus one problem string per id the engine rejects."""
    specs, problems = [], []
    kwargs = list(kwargs) + [{}] * (len(ids) - len(kwargs))
    for cid, raw in zip(ids, kwargs, strict=True):
        try:
            constraint = engine.parse({"id": cid, "kwargs": _json(raw) or {}})
            specs.append(ConstraintSpec(**constraint.spec()))
        except engine.ConstraintError as exc:
            problems.append(str(exc).split(";")[0])
    return specs, problems


def _session(session_id: str, system: str, turns: list[Turn]) -> Session:
    return Session(session_id=session_id, system=system, turns=turns, split="eval", seed=0, render_rules=False)


def load_ifeval(path: str | Path, name: str = "ifeval") -> Loaded:
    loaded = Loaded()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                specs, problems = _specs(list(row["instruction_id_list"]), list(row.get("kwargs") or []))
                prompt = str(row["prompt"])
            except (ValueError, KeyError, TypeError) as exc:
                loaded.unsupported.append({"row": number, "reason": f"malformed row: {exc}"})
                continue
            if problems:
                loaded.unsupported.append({"row": number, "key": row.get("key"), "reason": "; ".join(problems)})
                continue
            turn = Turn(user=prompt, constraints=specs, cumulative=False)
            loaded.sessions.append(_session(f"{name}-{row.get('key', number)}", "", [turn]))
    return loaded


def load_ifbench(path: str | Path) -> Loaded:
    return load_ifeval(path, name="ifbench")


def _message_text(raw: str) -> str:
    value = _json(raw)
    return str(value.get("content", "")) if isinstance(value, dict) else str(value)


def load_multi_if(path: str | Path) -> Loaded:
    loaded = Loaded()
    with Path(path).open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            turns, problems = [], []
            k = 1
            while row.get(f"turn_{k}_prompt"):
                try:
                    ids = _json(row[f"turn_{k}_instruction_id_list"]) or []
                    kwargs = _json(row.get(f"turn_{k}_kwargs") or "[]") or []
                    specs, bad = _specs(list(ids), list(kwargs))
                except (ValueError, TypeError) as exc:
                    specs, bad = [], [f"turn {k}: malformed: {exc}"]
                problems += [f"turn {k}: {p}" for p in bad]
                turns.append(Turn(user=_message_text(row[f"turn_{k}_prompt"]) or "(empty)", constraints=specs,
                                  cumulative=False))
                k += 1
            if problems or not turns:
                loaded.unsupported.append({"row": number, "reason": "; ".join(problems) or "no turns"})
                continue
            loaded.sessions.append(_session(f"multi_if-{row.get('key') or number}", "", turns))
    return loaded


def load_sysbench(path: str | Path) -> Loaded:
    loaded = Loaded()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for index, item in enumerate(data if isinstance(data, list) else []):
        try:
            turns = []
            for message in item["messages"]:
                criteria = message.get("criteria") or {}
                texts = list(criteria.values()) if isinstance(criteria, dict) else list(criteria)
                specs, problems = _specs(["soft:criteria"] * len(texts), [{"text": str(t)} for t in texts])
                if problems:
                    raise ValueError(problems[0])
                turns.append(Turn(user=str(message["content"]), constraints=specs, cumulative=False))
        except (KeyError, TypeError, ValueError) as exc:
            loaded.unsupported.append({"row": index, "reason": f"{exc} (soft criteria need the soft judge)"})
            continue
        loaded.sessions.append(_session(f"sysbench-{item.get('id', index)}", str(item.get("system_prompt", "")), turns))
    return loaded


LOADERS = {"ifeval": load_ifeval, "multi_if": load_multi_if, "ifbench": load_ifbench, "sysbench": load_sysbench}
