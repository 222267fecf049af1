"""Does the model read the rules? Held-out diagnostics computed from each pair's Delta.

An RPO couple is the same two replies under two prompts that differ only in the reversed rules, with
opposite labels. A model that ignores the rule text scores both replies the same way under both
prompts, so its two reward margins cancel: beta * (Delta_A + Delta_B) = 0. The sum is positive when
the model's preference follows the rules it is given. It is exactly 0 before training (policy =
reference) and is reported per evaluation, with the share of couples whose sum is positive.

Accuracy: the share of held-out pairs with Delta > 0 (no margin shift, so every loss is scored alike).
Per rule type: the held-out accuracy (Delta > 0) over the pairs whose rejected reply fails that rule
and whose chosen reply passes it, i.e. the rules that separate the pair.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reverso.contracts import Pair
from reverso.pairs.builders import couple_key
from reverso.pairs.validate import reverify


@dataclass(frozen=True)
class HeldOutFacts:
    """What the diagnostics need to know about each held-out pair, by its row index."""

    couples: list[tuple[int, int]]  # row indices of the two pairs of each mirror couple
    rule_types: dict[int, list[str]]  # row -> ids of the rules that separate chosen from rejected


def held_out_facts(pairs: list[Pair]) -> HeldOutFacts:
    by_key: dict[Any, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        by_key[couple_key(pair)].append(index)
    couples = [(rows[0], rows[1]) for rows in by_key.values() if len(rows) == 2]
    types = {}
    for index, pair in enumerate(pairs):
        chosen_fails, rejected_fails = reverify(pair)
        types[index] = sorted(set(rejected_fails) - set(chosen_fails))
    return HeldOutFacts(couples, types)


def rule_reading(facts: HeldOutFacts, deltas: dict[int, float], beta: float) -> dict[str, Any]:
    """The couple-margin sum (mean, count, share positive) and per-rule-type accuracy of one evaluation."""
    sums = [beta * (deltas[a] + deltas[b]) for a, b in facts.couples if a in deltas and b in deltas]
    result: dict[str, Any] = {"couples": len(sums), "pairs": len(deltas)}
    if deltas:
        result["accuracy"] = sum(d > 0 for d in deltas.values()) / len(deltas)  # unshifted: Delta > 0
    if sums:
        result["couple_margin_sum"] = sum(sums) / len(sums)
        result["couples_reading"] = sum(s > 0 for s in sums) / len(sums)
    hits: dict[str, list[bool]] = defaultdict(list)
    for index, delta in deltas.items():
        for rule in facts.rule_types.get(index, []):
            hits[rule].append(delta > 0)
    result["type_accuracy"] = {rule: {"accuracy": sum(h) / len(h), "pairs": len(h)} for rule, h in sorted(hits.items())}
    return result


def flat_metrics(found: dict[str, Any]) -> dict[str, float]:
    """The diagnostic as flat numeric log entries (``rule_reading/...``, ``type_accuracy/<rule>``)."""
    flat = {f"rule_reading/{k}": float(v) for k, v in found.items() if k != "type_accuracy"}
    flat.update({f"type_accuracy/{rule}": float(v["accuracy"]) for rule, v in found.get("type_accuracy", {}).items()})
    return flat
