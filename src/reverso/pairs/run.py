"""The pairs entry point; what it does is in the package docstring (reverso/pairs/__init__.py)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from reverso.config import PairsParams
from reverso.train.config import BUILDERS
from reverso.contracts import Example, Pair, Response, Session, Verdict
from reverso.io import (
    DataError,
    Quarantined,
    enforce_quarantine_limit,
    read_rows,
    write_json,
    write_jsonl,
    write_quarantine,
)
from reverso.pairs.builders import (
    Sample,
    couple_key,
    dpo_pair,
    dpo_paper_pairs,
    hindsight_examples,
    rpo_pairs,
    verified_examples,
)
from reverso.pairs.validate import GateSettings, validate_pair_sets
from reverso.reverse import session_problem


def _token_counter(model_dir: str | Path | None) -> Any:
    if model_dir is None:
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def count(pair: Pair | Example) -> int:
        replies = [pair.completion] if isinstance(pair, Example) else [pair.chosen, pair.rejected]
        return max(len(tokenizer.apply_chat_template([m.model_dump() for m in [*pair.prompt, *reply]],
                                                     tokenize=True, return_dict=True)["input_ids"])
                   for reply in replies)

    return count


def cap_reply_pairs(pairs: list[Pair], cap: int, rng: random.Random, per_turn: bool = False) -> list[Pair]:
    """At most ``cap`` reply pairs per session (or per turn), drawn reproducibly; couples stay whole."""
    units: dict[Any, dict[Any, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, pair in enumerate(pairs):
        group = (pair.session_id, pair.turn) if per_turn else pair.session_id
        units[group][couple_key(pair)].append(index)
    keep: set[int] = set()
    for couples in units.values():
        chosen = list(couples.values())
        if len(chosen) > cap:
            chosen = [chosen[i] for i in sorted(rng.sample(range(len(chosen)), cap))]
        keep.update(i for indices in chosen for i in indices)
    return [p for i, p in enumerate(pairs) if i in keep]


def subsample(items: list[Any], size: int, rng: random.Random) -> list[Any]:
    """``size`` items drawn reproducibly, in their original order."""
    if len(items) <= size:
        return list(items)
    keep = set(rng.sample(range(len(items)), size))
    return [item for i, item in enumerate(items) if i in keep]


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


def finished_only(groups: dict[tuple[str, int], list[Sample]], allow_truncated: bool
                  ) -> tuple[dict[tuple[str, int], list[Sample]], int]:
    """Drop replies cut off by the token cap (unless allowed); returns the groups and how many were left out."""
    if allow_truncated:
        return groups, 0
    kept = {key: [s for s in samples if s.response.finish_reason != "length"] for key, samples in groups.items()}
    return kept, sum(len(groups[k]) - len(kept[k]) for k in groups)


def refuse_unrendered(sessions: dict[str, Session], groups: dict[tuple[str, int], list[Sample]]) -> None:
    """RPO rewrites the rule list; a session whose rules live in the user's own words has none to rewrite."""
    unrendered = sorted({key[0] for key in groups if not sessions[key[0]].render_rules})
    if unrendered:
        raise DataError(
            f"pairs: {len(unrendered)} session(s) have render_rules: false ({', '.join(unrendered[:5])}): their "
            "prompts state the constraints in the user's words, so a reversed instruction could never reach the "
            "model and every RPO pair would keep the original prompt. Build such sessions with render_rules: true "
            "(the rules rendered in the system message) or leave them out of collect.sessions_file.")


def turn_pair_sets(params: PairsParams, session: Session, samples: list[Sample],
                   every: list[Sample] | None = None) -> dict[str, list[Any]]:
    """Every builder's pairs (or SFT examples) of one (session, turn).

    ``samples`` are the replies the sets may use (finished ones unless pairs.allow_truncated); ``every``
    the turn's replies cut ones included, which rpo_finish pairs as rejected replies (default: ``samples``).
    """
    baseline = dpo_pair(session, samples)
    return {"rpo": rpo_pairs(session, samples, params.g_min), "dpo": [baseline] if baseline else [],
            "dpo_paper": dpo_paper_pairs(session, samples, params.dpo_paper_gap),
            "rpo_one_way": rpo_pairs(session, samples, params.g_min, one_way=True),
            "rpo_finish": rpo_pairs(session, samples if every is None else every, params.g_min, finish=True),
            "hindsight_sft": hindsight_examples(session, samples),
            "verified_sft": verified_examples(session, samples)}


def build_pair_sets(params: PairsParams, sessions: dict[str, Session], groups: dict[tuple[str, int], list[Sample]],
                    every: dict[tuple[str, int], list[Sample]] | None = None
                    ) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """Every pair (and example) set from the same samples, with the same per-turn and per-session caps.

    Returns the sets and, per builder, how many pairs the caps removed. ``every``: the turns' replies
    with the cut ones (rpo_finish), default ``groups``.
    """
    built: dict[str, list[Any]] = {name: [] for name in BUILDERS}
    rngs = {name: random.Random(f"{params.seed}-{name}") for name in BUILDERS}  # one set's draws never move the other's
    made = dict.fromkeys(BUILDERS, 0)
    for key in sorted(groups):
        turn_sets = turn_pair_sets(params, sessions[key[0]], groups[key], (every or groups).get(key))
        for name, turn_pairs in turn_sets.items():
            made[name] += len(turn_pairs)
            if params.max_pairs_per_turn:
                turn_pairs = cap_reply_pairs(turn_pairs, params.max_pairs_per_turn, rngs[name], per_turn=True)
            built[name].extend(turn_pairs)
    if params.max_pairs_per_session:
        built = {name: cap_reply_pairs(items, params.max_pairs_per_session, rngs[name])
                 for name, items in built.items()}
    return built, {name: made[name] - len(built[name]) for name in BUILDERS}


Gated = dict[str, tuple[list[Pair], list[str], list[int] | None]]


def equalize(gated: Gated, seed: int, names: list[str] | None = None) -> tuple[Gated, dict[str, int]]:
    """Subsample each split of the named sets to the smallest one's size (equal pair and step budgets)."""
    names = list(gated) if names is None else names
    rest = {name: item for name, item in gated.items() if name not in names}
    gated = {name: gated[name] for name in names}
    out: dict[str, list[tuple[Pair, str, int | None]]] = {name: [] for name in gated}
    for split in ("train", "eval"):
        rows = {name: [(p, s, t[i] if t else None) for i, (p, s) in enumerate(zip(items, splits, strict=True))
                       if s == split] for name, (items, splits, t) in gated.items()}
        size = min(len(r) for r in rows.values())
        for name, items in rows.items():
            out[name] += subsample(items, size, random.Random(f"{seed}-equalize-{split}-{name}"))
    dropped = {name: len(gated[name][0]) - len(out[name]) for name in gated} | dict.fromkeys(rest, 0)
    result = {name: ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows] if gated[name][2] else None)
              for name, rows in out.items()}
    return rest | result, dropped


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
    """Run the pairs stage: finished replies only, build, cap, length-filter, (equalize), split, write, gate."""
    out_dir = Path(out_dir)
    sessions = {s.session_id: s for s in read_rows(sessions_in, Session, check=session_problem).rows}
    groups, quarantined, verdicts_total = group_samples(verdicts_in, responses_in, sessions)
    enforce_quarantine_limit("pairs", verdicts_total, len(quarantined), params.max_quarantine_fraction)
    refuse_unrendered(sessions, groups)
    every = groups
    groups, truncated = finished_only(groups, params.allow_truncated)
    built, capped = build_pair_sets(params, sessions, groups, every)
    count_tokens = _token_counter(model_dir) if max_tokens else None
    metrics: dict[str, Any] = {
        "verdicts_in": verdicts_total, "verdicts_quarantined": len(quarantined), "turn_groups": len(groups),
        # in = used + truncated_left_out + quarantined
        "responses_used": sum(len(s) for s in groups.values()), "truncated_left_out": truncated,
        "allow_truncated": params.allow_truncated, "equalized": list(params.equalize)}
    too_long: list[Quarantined] = []
    gated: Gated = {}
    for name, items in built.items():
        tokens = [count_tokens(p) for p in items] if count_tokens else None
        if tokens is not None:
            keep = [i for i, n in enumerate(tokens) if n <= max_tokens]
            kept = set(keep)
            too_long += [Quarantined(f"{name} pairs", i, f"{tokens[i]} tokens > max_length {max_tokens}",
                                     items[i].model_dump_json()) for i in range(len(items)) if i not in kept]
            items, tokens = [items[i] for i in keep], [tokens[i] for i in keep]
        gated[name] = (items, [sessions[p.session_id].split for p in items], tokens)
    equalized = dict.fromkeys(BUILDERS, 0)
    if params.equalize:
        gated, equalized = equalize(gated, params.seed, params.equalize)
    validate_pair_sets(gated, GateSettings(params.g_min, max_tokens, params.dpo_paper_gap), reports_dir)
    for name, (items, splits, _) in gated.items():
        for split in ("train", "eval"):
            write_jsonl(out_dir / name / f"{split}.jsonl", [p for p, s in zip(items, splits) if s == split])
        margins = Counter(p.margin for p in items if isinstance(p, Pair))
        metrics[name] = {
            "pairs": len(items),
            "train": splits.count("train"),
            "eval": splits.count("eval"),
            "dropped_by_caps": capped[name],
            "dropped_by_equalize": equalized[name],
            "margin_histogram": {str(g): margins[g] for g in sorted(margins)},
            "constraint_types": dict(Counter(c.id for p in items for c in p.constraints).most_common()),
        }
        if name == "rpo_finish":  # the cut replies this set teaches against (allow_truncated does not apply)
            metrics[name]["rejected_cut"] = sum(p.rejected_cut for p in items)
    metrics["filtered_too_long"] = len(too_long)
    write_quarantine(out_dir / "pairs.jsonl", [*quarantined, *too_long])
    write_json(metrics_out, metrics)
    write_json(Path(metrics_out).with_name("pairs_margins.json"), {
        "margins": [{"builder": b, "margin": int(g), "count": n}
                    for b in BUILDERS for g, n in metrics[b]["margin_histogram"].items()]})
    return metrics
