"""Tolerant readers for the files the inspector shows.

The inspector reads what earlier stages already validated, so it never stops on one odd row: a
missing file is "not produced by this run", a bad line is counted and shown, and fields newer than
the data contracts are passed through for display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Rows:
    """The JSON objects of one JSONL file and the lines that could not be read."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)
    exists: bool = True


def read_jsonl(path: str | Path) -> Rows:
    path = Path(path)
    result = Rows(path)
    if not path.is_file():
        result.exists = False
        return result
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                result.unreadable.append(number)
                continue
            if isinstance(row, dict):
                result.rows.append(row)
            else:
                result.unreadable.append(number)
    return result


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object, or ``{}`` when the file is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def dig(data: Any, *keys: str, default: Any = None) -> Any:
    """``data[k1][k2]...`` or ``default`` when any level is missing."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def number(value: Any) -> float | None:
    """A plain number, or the point estimate of an interval dict (``mean`` / ``value``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        for key in ("mean", "value", "estimate"):
            if isinstance(value.get(key), (int, float)) and not isinstance(value.get(key), bool):
                return float(value[key])
    return None


def interval(value: Any) -> tuple[float | None, float | None]:
    """``(ci_low, ci_high)`` of an interval dict (``ci_low``/``ci_high``, ``low``/``high`` or ``ci: [lo, hi]``)."""
    if not isinstance(value, dict):
        return None, None
    for low, high in (("ci_low", "ci_high"), ("low", "high"), ("lower", "upper")):
        if isinstance(value.get(low), (int, float)) and isinstance(value.get(high), (int, float)):
            return float(value[low]), float(value[high])
    pair = value.get("ci")
    if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair):
        return float(pair[0]), float(pair[1])
    return None, None


def metric_at(tree: dict[str, Any], dotted: str) -> Any:
    """``tree["multi_if"]["average"]`` for ``"multi_if.average"``; a flat ``tree["multi_if.average"]`` too."""
    if dotted in tree:
        return tree[dotted]
    return dig(tree, *dotted.split("."))


def find_interval(evaluation: dict[str, Any], model: str, metric: str) -> Any:
    """``model``'s value of ``metric`` with its CI: ``ci[model][metric]`` (evaluate's shape) or the metric itself."""
    found = metric_at(dig(evaluation, "ci", model) or {}, metric)
    return found if found is not None else metric_at(evaluation.get(model) or {}, metric)


def find_difference(evaluation: dict[str, Any], metric: str) -> Any:
    """The paired policy-minus-base difference of ``metric``: ``paired["policy-base"][metric]`` (evaluate's
    shape), or under ``differences`` / ``paired_differences``."""
    for key in ("paired", "differences", "paired_differences"):
        block = evaluation.get(key)
        if not isinstance(block, dict):
            continue
        for inner in ("policy-base", "policy_minus_base"):
            if isinstance(block.get(inner), dict) and metric_at(block[inner], metric) is not None:
                return metric_at(block[inner], metric)
        if metric_at(block, metric) is not None:
            return metric_at(block, metric)
    return None
