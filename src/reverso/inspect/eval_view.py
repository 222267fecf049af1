"""The evaluation page's data: per suite, base vs policy per prompt (or session), won/lost first.

Per-unit verdicts come from ``reports/eval_outputs.jsonl``. The inspector accepts the shapes an
evaluation may write (see docs/architecture.md, "Inspector"): per model either a list of texts per turn
plus ``verdicts[model]`` (one ``{constraint_ids, strict, reasons?}`` per turn; ``passed`` /
``constraints`` / ``ids`` are read too), or a list of per-turn dicts that carry both the text and the
verdicts. Rows without verdicts are still shown side by side, unranked.

A unit is *won* by the policy when it fully satisfies more turns than the base, or as many turns and
more rules; *lost* the other way round; otherwise a tie. Won units come first (largest gain first),
then lost ones (largest loss first), then ties.
"""

from __future__ import annotations

from typing import Any

from reverso.inspect.load import dig, find_difference, find_interval, interval, number, read_json, read_jsonl

MODELS = ("base", "policy")
PRIMARY = {"ifeval": "prompt_strict", "ifbench": "prompt_strict", "multi_if": "average", "sysbench": "isr"}


def primary_metric(suite: str) -> str | None:
    """``multi_if.average`` for suite ``multi_if`` (``official_`` suites use their benchmark's metric)."""
    kind = suite.removeprefix("official_")
    return f"{suite}.{PRIMARY[kind]}" if kind in PRIMARY else None


def _turn_verdict(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    ids = item.get("constraint_ids") or item.get("ids") or [
        c.get("id") if isinstance(c, dict) else c for c in item.get("constraints") or []]
    passed = item.get("strict", item.get("passed"))
    if not isinstance(passed, list):
        return None
    reasons = item.get("reasons") or [""] * len(passed)
    return {"rules": [{"id": str(i), "ok": bool(p), "why": str(r)} for i, p, r in zip(ids, passed, reasons)]}


def model_turns(row: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """``[{text, rules | None}]`` per turn of one model's answers in an eval-outputs row."""
    answers = row.get(model) or []
    answers = answers if isinstance(answers, list) else [answers]
    separate = (dig(row, "verdicts", model) or dig(row, "scores", model) or row.get(f"{model}_verdicts")
                or row.get(f"{model}_scores") or [])
    turns = []
    for index, answer in enumerate(answers):
        text = answer.get("text", "") if isinstance(answer, dict) else str(answer)
        verdict = _turn_verdict(answer) if isinstance(answer, dict) else None
        if verdict is None and index < len(separate):
            verdict = _turn_verdict(separate[index])
        turns.append({"text": text, "rules": verdict["rules"] if verdict else None})
    return turns


def _score(turns: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(fully satisfied turns, satisfied rules), or None without verdicts."""
    if not turns or any(t["rules"] is None for t in turns):
        return None
    return (sum(all(r["ok"] for r in t["rules"]) for t in turns), sum(r["ok"] for t in turns for r in t["rules"]))


def outcome(base: tuple[int, int] | None, policy: tuple[int, int] | None) -> str:
    if base is None or policy is None:
        return "unscored"
    return "won" if policy > base else "lost" if policy < base else "tie"


ORDER = {"won": 0, "lost": 1, "tie": 2, "unscored": 3}


def unit_record(row: dict[str, Any]) -> dict[str, Any]:
    base, policy = model_turns(row, "base"), model_turns(row, "policy")
    base_score, policy_score = _score(base), _score(policy)
    result = outcome(base_score, policy_score)
    gain = (policy_score[0] - base_score[0], policy_score[1] - base_score[1]) if result != "unscored" else (0, 0)
    users = row.get("turns") or []
    return {"session": str(row.get("session_id", row.get("id", "?"))), "outcome": result,
            "gain": list(gain), "base_score": base_score, "policy_score": policy_score,
            "turns": [{"user": str(users[i]) if i < len(users) else "",
                       "base": base[i] if i < len(base) else None,
                       "policy": policy[i] if i < len(policy) else None}
                      for i in range(max(len(base), len(policy), len(users)))]}


def ranked(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Won first (largest gain first), then lost (largest loss first), then ties, then unscored."""
    def key(unit: dict[str, Any]) -> tuple[int, int, int, str]:
        turns, rules = unit["gain"]
        sign = -1 if unit["outcome"] == "won" else 1
        return ORDER[unit["outcome"]], sign * turns, sign * rules, unit["session"]
    return sorted(units, key=key)


def suite_summaries(evaluation: dict[str, Any], suites: list[str]) -> list[dict[str, Any]]:
    """Primary metric per suite for base and policy, with intervals and the paired difference when present."""
    rows = []
    for suite in suites:
        metric = primary_metric(suite)
        if metric is None:
            continue
        row: dict[str, Any] = {"suite": suite, "metric": metric}
        for model in MODELS:
            value = find_interval(evaluation, model, metric)
            row[model] = number(value)
            row[f"{model}_ci"] = interval(value)
        difference = find_difference(evaluation, metric)
        row["diff"] = number(difference)
        row["diff_ci"] = interval(difference)
        if row["diff"] is None and row["base"] is not None and row["policy"] is not None:
            row["diff"] = row["policy"] - row["base"]
        rows.append(row)
    return rows


def per_constraint_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Long format: one row per (constraint type, model) with the pass rate and its interval if given."""
    rows = []
    for model in MODELS:
        for constraint, value in sorted((dig(evaluation, model, "per_constraint") or {}).items()):
            rate = number(value)
            if rate is None:
                continue
            low, high = interval(value)
            rows.append({"constraint": constraint, "model": model, "pass_rate": rate, "ci_low": low, "ci_high": high})
    return rows


def build_eval_view(outputs_path: Any, eval_path: Any) -> dict[str, Any]:
    outputs = read_jsonl(outputs_path)
    evaluation = read_json(eval_path)
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for row in outputs.rows:
        by_suite.setdefault(str(row.get("suite", "?")), []).append(unit_record(row))
    suites = list(by_suite) or [k for k in (evaluation.get("base") or {}) if k != "per_constraint"]
    return {
        "suites": [{"name": name, "units": ranked(units),
                    "counts": {o: sum(u["outcome"] == o for u in units) for o in ORDER}}
                   for name, units in by_suite.items()],
        "summary": suite_summaries(evaluation, suites),
        "per_constraint": per_constraint_rows(evaluation),
        "has_outputs": outputs.exists, "has_metrics": bool(evaluation),
        "unreadable": outputs.unreadable,
    }


def training_view(train: dict[str, Any]) -> dict[str, Any]:
    """The train stage's rule-reading diagnostic and regime (metrics/train.json) for the evaluation page."""
    reading = train.get("rule_reading") or {}
    after = reading.get("after") or {}
    types = [{"rule": rule, **entry} for rule, entry in (after.get("type_accuracy") or {}).items()]
    return {"arm": train.get("arm"), "loss": train.get("loss"), "regime": train.get("regime") or {},
            "before": reading.get("before") or {}, "after": after,
            "type_accuracy": sorted(types, key=lambda r: (r.get("accuracy", 0), r["rule"]))}


def improve_view(report: dict[str, Any], curve_png: Any) -> dict[str, Any]:
    """The self-improving loop's rounds (metrics/improve.json) and its curve, for the evaluation page."""
    import base64
    from pathlib import Path

    if not report.get("rounds"):
        return {}
    rows = []
    for row in report["rounds"]:
        validation = row.get("validation") or {}
        rows.append({"round": row.get("round"), "challenger": row.get("challenger_version"),
                     "champion_before": row.get("champion_before"), "decision": row.get("decision"),
                     "reason": row.get("reason") or "", "value": number(validation.get("challenger")),
                     "value_ci": interval(validation.get("challenger")),
                     "vs": number(validation.get("vs_champion") or validation.get("vs_base")),
                     "vs_ci": interval(validation.get("vs_champion") or validation.get("vs_base")),
                     "vs_label": "champion" if validation.get("vs_champion") else "base",
                     "pairs": (row.get("pairs") or {}).get("train"), "wall_s": row.get("wall_s")})
    final = report.get("final_test") or {}
    path = Path(curve_png)
    image = base64.b64encode(path.read_bytes()).decode() if path.exists() else None
    return {"metric": report.get("metric"), "rounds": rows, "champion": report.get("champion"),
            "final": {"champion": final.get("champion_version"), "skipped": final.get("skipped"),
                      "diff": number(final.get("vs_base")), "diff_ci": interval(final.get("vs_base"))},
            "curve_png": image}
