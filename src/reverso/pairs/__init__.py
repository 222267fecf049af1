"""pairs: RPO pairs + count-based DPO baseline pairs, split by session, gated by Great Expectations."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from reverso.config import PairsParams
from reverso.contracts import Pair, Response, Session, Verdict
from reverso.io import Quarantined, enforce_quarantine_limit, read_rows, write_json, write_jsonl, write_quarantine
from reverso.pairs.builders import Sample, dpo_pair, rpo_pairs
from reverso.pairs.validate import GateSettings, validate_pair_sets
from reverso.reverse import session_problem

BUILDERS = ("rpo", "dpo")


def _token_counter(model_dir: str | Path | None) -> Any:
    if model_dir is None:
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def count(pair: Pair) -> int:
        messages = [m.model_dump() for m in [*pair.prompt, *pair.chosen]]
        other = [m.model_dump() for m in [*pair.prompt, *pair.rejected]]
        return max(len(tokenizer.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"])
                   for m in (messages, other))

    return count


def cap_per_session(pairs: list[Pair], cap: int, rng: random.Random) -> list[Pair]:
    """At most ``cap`` pairs per session, sampled reproducibly; order otherwise kept."""
    by_session: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        by_session[pair.session_id].append(index)
    keep = {i for indices in by_session.values() for i in (rng.sample(indices, cap) if len(indices) > cap else indices)}
    return [p for i, p in enumerate(pairs) if i in keep]


def group_samples(
    verdicts_path: str | Path, responses_path: str | Path, sessions: dict[str, Session]
) -> tuple[dict[tuple[str, int], list[Sample]], list[Quarantined], int]:
    """Join verdicts to their responses, grouped by (session, turn)."""
    responses = read_rows(responses_path, Response)
    by_key = {(r.session_id, r.turn, r.sample_idx): r for r in responses.rows}

    def problem(row: Verdict) -> str | None:
        if row.session_id not in sessions:
            return f"unknown or quarantined session_id {row.session_id!r}"
        if (row.session_id, row.turn, row.sample_idx) not in by_key:
            return "no response row for this verdict"
        return None

    verdicts = read_rows(verdicts_path, Verdict, check=problem)
    groups: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for verdict in verdicts.rows:
        groups[(verdict.session_id, verdict.turn)].append(
            Sample(by_key[(verdict.session_id, verdict.turn, verdict.sample_idx)], verdict))
    return groups, verdicts.quarantined, verdicts.total


def pairs(
    params: PairsParams,
    sessions_in: str | Path,
    responses_in: str | Path,
    verdicts_in: str | Path,
    out_dir: str | Path,
    metrics_out: str | Path,
    reports_dir: str | Path,
    model_dir: str | Path | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Run the pairs stage: build, cap, length-filter, split, write, and gate both pair sets."""
    out_dir = Path(out_dir)
    sessions = {s.session_id: s for s in read_rows(sessions_in, Session, check=session_problem).rows}
    groups, quarantined, verdicts_total = group_samples(verdicts_in, responses_in, sessions)
    enforce_quarantine_limit("pairs", verdicts_total, len(quarantined), params.max_quarantine_fraction)
    rng = random.Random(params.seed)
    built: dict[str, list[Pair]] = {name: [] for name in BUILDERS}
    for key in sorted(groups):
        session, samples = sessions[key[0]], groups[key]
        turn_pairs = rpo_pairs(session, samples, params.g_min)
        if params.max_pairs_per_turn and len(turn_pairs) > params.max_pairs_per_turn:
            turn_pairs = rng.sample(turn_pairs, params.max_pairs_per_turn)
        built["rpo"].extend(turn_pairs)
        baseline = dpo_pair(session, samples)
        if baseline is not None:
            built["dpo"].append(baseline)

    if params.max_pairs_per_session:
        built["rpo"] = cap_per_session(built["rpo"], params.max_pairs_per_session, rng)
    count_tokens = _token_counter(model_dir) if max_tokens else None
    metrics: dict[str, Any] = {"verdicts_in": verdicts_total, "verdicts_quarantined": len(quarantined),
                               "turn_groups": len(groups)}
    too_long: list[Quarantined] = []
    gated: dict[str, tuple[list[Pair], list[str], list[int] | None]] = {}
    for name, items in built.items():
        tokens = [count_tokens(p) for p in items] if count_tokens else None
        if tokens is not None:
            keep = [i for i, n in enumerate(tokens) if n <= max_tokens]
            too_long += [Quarantined(f"{name} pairs", i, f"{tokens[i]} tokens > max_length {max_tokens}",
                                     items[i].model_dump_json()) for i in range(len(items)) if i not in set(keep)]
            items, tokens = [items[i] for i in keep], [tokens[i] for i in keep]
        splits = [sessions[p.session_id].split for p in items]
        gated[name] = (items, splits, tokens)
    validate_pair_sets(gated, GateSettings(params.g_min, max_tokens), reports_dir)
    for name, (items, splits, _) in gated.items():
        for split in ("train", "eval"):
            write_jsonl(out_dir / name / f"{split}.jsonl", [p for p, s in zip(items, splits) if s == split])
        margins = Counter(p.margin for p in items)
        metrics[name] = {
            "pairs": len(items),
            "train": splits.count("train"),
            "eval": splits.count("eval"),
            "margin_histogram": {str(g): margins[g] for g in sorted(margins)},
            "constraint_types": dict(Counter(c.id for p in items for c in p.constraints).most_common()),
        }
    metrics["filtered_too_long"] = len(too_long)
    write_quarantine(out_dir / "pairs.jsonl", [*quarantined, *too_long])
    write_json(metrics_out, metrics)
    write_json(Path(metrics_out).with_name("pairs_margins.json"), {
        "margins": [{"builder": b, "margin": int(g), "count": n}
                    for b in BUILDERS for g, n in metrics[b]["margin_histogram"].items()]})
    return metrics
