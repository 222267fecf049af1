"""The pairs page's data: every pair joined to the verdicts of its chosen and rejected responses.

A pair names its responses by text only (the TRL preference format), so each side is found again
among the responses of its (session, turn) by exact text, and its verdict row gives the original
rules, the per-rule pass/fail with the checker's reason, and the reversed rules. For rule i:

- ``changed``: the pair's prompt rule differs from the original rule (RPO reversed it);
- ``separates``: chosen and rejected disagree on the original rule (RPO's g counts these);
- under the pair's prompt a reversed rule is the exact complement of the original (the reversal's
  contract, tested in the constraint engine), so a response passes it iff it failed the original.

Strings are stored once in a table (mirrored RPO pairs share both responses and most prompts),
which keeps the page a few hundred kB for thousands of pairs' worth of metadata.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from reverso.inspect.load import Rows, read_json, read_jsonl

CONTRACT_KEYS = {"schema_version", "prompt", "chosen", "rejected", "margin", "constraints", "session_id",
                 "turn", "builder", "completion", "rejected_cut"}
RAW_SHOWN = 600  # characters of a quarantined row's raw text on the page


class StringTable:
    """Long strings stored once; rows refer to them by index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, text: str | None) -> int | None:
        if text is None:
            return None
        if text not in self._index:
            self._index[text] = len(self.items)
            self.items.append(text)
        return self._index[text]


def spec_key(spec: dict[str, Any]) -> str:
    return json.dumps({"id": spec.get("id"), "kwargs": spec.get("kwargs") or {}}, sort_keys=True)


def spec_code(spec: dict[str, Any]) -> str:
    """``id {kwargs}`` on one line, the form the data files use."""
    kwargs = spec.get("kwargs") or {}
    return f"{spec.get('id')} {json.dumps(kwargs, sort_keys=True)}" if kwargs else str(spec.get("id"))


def spec_english(spec: dict[str, Any]) -> str | None:
    """The rule in English as the constraint engine words it (None when the engine rejects the spec)."""
    from reverso import constraints as engine

    try:
        constraint = engine.parse({"id": spec.get("id"), "kwargs": spec.get("kwargs") or {}})
        return engine.describe(constraint, engine.stable_rng(constraint.id))
    except Exception:  # an unknown or newer type: show the spec itself
        return None


class ResponseIndex:
    """(session, turn, text) -> (response row, verdict row), from responses.jsonl + verdicts.jsonl."""

    def __init__(self, responses: Rows, verdicts: Rows) -> None:
        by_key = {(r.get("session_id"), r.get("turn"), r.get("sample_idx")): r for r in responses.rows}
        self._by_text: dict[tuple[Any, Any, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        for verdict in verdicts.rows:
            key = (verdict.get("session_id"), verdict.get("turn"), verdict.get("sample_idx"))
            response = by_key.get(key)
            if response is not None:
                self._by_text.setdefault((key[0], key[1], response.get("text", "")), (response, verdict))

    def find(self, session_id: Any, turn: Any, text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return self._by_text.get((session_id, turn, text), (None, None))


def _content(messages: Any) -> str:
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return str(messages[0].get("content", ""))
    return ""


def _aligned(verdict: dict[str, Any] | None, original: list[dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    """spec key -> (passed, reason) of a verdict row."""
    if verdict is None:
        return {}
    specs, passed, reasons = verdict.get("constraints") or [], verdict.get("passed") or [], verdict.get("reasons") or []
    return {spec_key(s): (bool(p), str(r)) for s, p, r in zip(specs, passed, reasons)}


def rendered_rules(prompt: Any, count: int) -> list[str] | None:
    """The numbered rule lines of the prompt's system message, when there are exactly ``count``."""
    from reverso.prompts import RULES_HEADER

    system = next((m.get("content", "") for m in prompt or [] if isinstance(m, dict) and m.get("role") == "system"), "")
    if RULES_HEADER not in system:
        return None
    lines = [line for line in system.split(RULES_HEADER, 1)[1].splitlines() if line.strip()]
    found = [line.split(". ", 1)[1] for i, line in enumerate(lines) if line.startswith(f"{i + 1}. ")]
    return found if len(found) == len(lines) == count else None


def with_implicit(pair: dict[str, Any], response: dict[str, Any] | None,
                  verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """The verdict row plus the implicit rules the pair's prompt carries (rpo_finish: "the reply ends"),
    judged by the constraint engine from the response's finish_reason, so they show like any other rule."""
    from reverso import constraints as engine

    if verdict is None or response is None:
        return verdict
    known = {spec_key(s) for s in verdict.get("constraints") or []}
    added = []
    for spec in pair.get("constraints") or []:
        try:
            constraint = engine.parse(spec)
        except Exception:  # an unknown type: rule_rows shows the spec as it is
            continue
        if engine.is_implicit(constraint) and spec_key(spec) not in known:
            context = engine.CheckContext(finished=response.get("finish_reason") != "length")
            added.append((spec, engine.check(constraint, str(response.get("text", "")), context)))
    if not added:
        return verdict
    return {**verdict, "constraints": [*(verdict.get("constraints") or []), *(s for s, _ in added)],
            "passed": [*(verdict.get("passed") or []), *(v.passed for _, v in added)],
            "reasons": [*(verdict.get("reasons") or []), *(v.reason for _, v in added)]}


def rule_rows(pair: dict[str, Any], chosen_verdict: dict[str, Any] | None,
              rejected_verdict: dict[str, Any] | None, strings: StringTable) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per rule of the pair's prompt, and the consistency warnings found on the way."""
    prompt_rules = pair.get("constraints") or []
    original = (chosen_verdict or {}).get("constraints") or []
    if len(original) != len(prompt_rules):
        original = []
    chosen, rejected = _aligned(chosen_verdict, original), _aligned(rejected_verdict, original)
    shown = rendered_rules(pair.get("prompt"), len(prompt_rules))  # the words the model read
    rows, warnings = [], []
    for index, rule in enumerate(prompt_rules):
        source = original[index] if original else None
        key = spec_key(source) if source else None
        c_pass, c_reason = chosen.get(key, (None, "")) if key else (None, "")
        r_pass, r_reason = rejected.get(key, (None, "")) if key else (None, "")
        changed = source is not None and spec_key(source) != spec_key(rule)
        under = [None if ok is None else (not ok if changed else ok) for ok in (c_pass, r_pass)]
        rows.append({
            "orig": strings.add(spec_code(source)) if source else None,
            "orig_en": (strings.add(shown[index] if shown and not changed else spec_english(source))
                        if source else None),
            "rule": strings.add(spec_code(rule)),
            "rule_en": strings.add(shown[index] if shown else spec_english(rule)),
            "type": str((source or rule).get("id")), "changed": changed,
            "c": c_pass, "c_why": strings.add(c_reason), "r": r_pass, "r_why": strings.add(r_reason),
            "c_under": under[0], "r_under": under[1],
            "sep": None if c_pass is None or r_pass is None else c_pass != r_pass,
        })
    if pair.get("builder") in ("rpo", "rpo_finish", "hindsight_sft") and original:
        broken = [i + 1 for i, row in enumerate(rows) if row["c_under"] is False]
        if broken:
            warnings.append(f"chosen fails rule(s) {broken} of its own prompt")
        wrongly_kept = [i + 1 for i, row in enumerate(rows) if row["c"] is False and not row["changed"]]
        if wrongly_kept:
            warnings.append(f"rule(s) {wrongly_kept} failed by chosen were not reversed")
    return rows, warnings


def pair_record(index: int, pair: dict[str, Any], split: str, responses: ResponseIndex,
                strings: StringTable) -> dict[str, Any]:
    session_id, turn = pair.get("session_id"), pair.get("turn")
    example = "completion" in pair  # an SFT example: its reply in the chosen column, no rejected side
    chosen_text = _content(pair.get("completion") if example else pair.get("chosen"))
    rejected_text = _content(pair.get("rejected"))
    chosen_response, chosen_verdict = responses.find(session_id, turn, chosen_text)
    rejected_response, rejected_verdict = responses.find(session_id, turn, rejected_text)
    chosen_verdict = with_implicit(pair, chosen_response, chosen_verdict)
    rejected_verdict = with_implicit(pair, rejected_response, rejected_verdict)
    rules, warnings = rule_rows(pair, chosen_verdict, rejected_verdict, strings)
    separating = [row for row in rules if row["sep"]]
    g = len(separating) if all(row["sep"] is not None for row in rules) and rules else None
    margin = pair.get("margin")
    if pair.get("builder") in ("rpo", "rpo_finish") and g is not None and margin != g:
        warnings.append(f"margin {margin} but {g} rules separate chosen from rejected")
    sides = (("chosen", chosen_verdict),) if example else (("chosen", chosen_verdict), ("rejected", rejected_verdict))
    if any(v is None for _, v in sides):
        warnings.append("no verdict row found for " + " and ".join(side for side, v in sides if v is None))
    return {
        "id": index, "builder": str(pair.get("builder", "?")), "split": split, "session": str(session_id),
        "turn": turn, "margin": margin, "g": g,
        "types": sorted({row["type"] for row in rules}),
        "sep_types": sorted({row["type"] for row in separating}),
        "prompt": [[str(m.get("role")), strings.add(str(m.get("content", "")))] for m in pair.get("prompt") or []],
        "chosen": strings.add(chosen_text), "rejected": strings.add(rejected_text),
        "chosen_sample": (chosen_response or {}).get("sample_idx"),
        "rejected_sample": (rejected_response or {}).get("sample_idx"),
        "chosen_finish": (chosen_response or {}).get("finish_reason"),
        "rejected_finish": (rejected_response or {}).get("finish_reason"),
        "rules": rules, "warnings": warnings,
        "extra": {k: v for k, v in pair.items() if k not in CONTRACT_KEYS},
    }


def pair_files(pairs_dir: Path) -> list[tuple[str, Path]]:
    """(split, file) for every pair file under ``data/pairs/<builder>/<split>.jsonl``."""
    found = [p for p in pairs_dir.glob("*/*.jsonl") if not p.name.endswith(".quarantine.jsonl")
             and not p.name.startswith(".")]
    order = {"rpo": 0, "dpo": 1, "train": 0, "eval": 1}  # RPO first, train before eval, then by name
    found.sort(key=lambda p: (order.get(p.parent.name, 2), p.parent.name, order.get(p.stem, 2), p.stem))
    return [(p.stem, p) for p in found]


def quarantine_rows(workspace: Path) -> list[dict[str, Any]]:
    """Every quarantined row under data/, with the file it sits in."""
    rows = []
    for path in sorted((workspace / "data").rglob("*.quarantine.jsonl")):
        for row in read_jsonl(path).rows:
            raw = str(row.get("raw", ""))
            rows.append({"file": str(path.relative_to(workspace)), "source": str(row.get("source", "")),
                         "line": row.get("line"), "field": row.get("field", ""), "reason": str(row.get("reason", "")),
                         "raw": raw[:RAW_SHOWN] + ("…" if len(raw) > RAW_SHOWN else "")})
    return rows


def count_check(records: list[dict[str, Any]], pairs_metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Counts in the pair files beside the counts metrics/pairs.json reports, per builder."""
    checks = []
    for builder in sorted({r["builder"] for r in records} | {k for k, v in pairs_metrics.items()
                                                            if isinstance(v, dict) and "pairs" in v}):
        mine = [r for r in records if r["builder"] == builder]
        reported = pairs_metrics.get(builder) or {}
        histogram = {str(g): n for g, n in sorted(Counter(r["margin"] for r in mine if r["margin"] is not None).items(),
                                                  key=lambda x: str(x[0]).zfill(8))}
        for what, shown, claimed in (
            ("pairs", len(mine), reported.get("pairs")),
            ("train", sum(r["split"] == "train" for r in mine), reported.get("train")),
            ("eval", sum(r["split"] == "eval" for r in mine), reported.get("eval")),
            ("margin histogram", histogram, reported.get("margin_histogram")),
        ):
            checks.append({"builder": builder, "what": what, "files": shown, "metrics": claimed,
                           "ok": claimed is None or shown == claimed})
    return checks


def build_pairs_view(workspace: Path, pairs_dir: Path, responses_path: Path, verdicts_path: Path,
                     pairs_metrics_path: Path) -> dict[str, Any]:
    """Everything the pairs page shows, as plain JSON-able data."""
    strings = StringTable()
    responses = ResponseIndex(read_jsonl(responses_path), read_jsonl(verdicts_path))
    records, unreadable = [], []
    for split, path in pair_files(pairs_dir):
        rows = read_jsonl(path)
        unreadable += [f"{path.relative_to(workspace) if path.is_relative_to(workspace) else path}:{n}"
                       for n in rows.unreadable]
        for pair in rows.rows:
            records.append(pair_record(len(records), pair, split, responses, strings))
    pairs_metrics = read_json(pairs_metrics_path)
    return {"pairs": records, "strings": strings.items, "quarantine": quarantine_rows(workspace),
            "checks": count_check(records, pairs_metrics), "unreadable": unreadable,
            "builders": sorted({r["builder"] for r in records}),
            "sessions": sorted({r["session"] for r in records}),
            "turns": sorted({r["turn"] for r in records if isinstance(r["turn"], int)}),
            "margins": sorted({r["margin"] for r in records if isinstance(r["margin"], int)}),
            "types": sorted({t for r in records for t in r["types"]})}


RULE_FIELDS = ("orig", "orig_en", "rule", "rule_en", "type", "changed", "c", "c_why", "r", "r_why")
DERIVED = ("types", "sep_types")  # recomputed in the page from the rules


def for_page(view: dict[str, Any]) -> dict[str, Any]:
    """The pairs and string table as embedded in the page: each rule a short array (see RULE_FIELDS).

    The page derives what can be derived (standing under the prompt, separating rules, types), which
    roughly halves the page for large runs.
    """
    strings = StringTable()
    for text in view["strings"]:
        strings.add(text)

    def rule(row: dict[str, Any]) -> list[Any]:
        values = {**row, "type": strings.add(row["type"])}
        return [int(v) if isinstance(v, bool) else v for v in (values[k] for k in RULE_FIELDS)]

    pairs = [{**{k: v for k, v in p.items() if k not in DERIVED and k != "rules"}, "rules": [rule(r) for r in p["rules"]]}
             for p in view["pairs"]]
    return {"fields": list(RULE_FIELDS), "pairs": pairs, "strings": strings.items}
