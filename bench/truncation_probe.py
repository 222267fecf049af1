"""Probe (sampler settings for collect): truncation and rule-following vs temperature and repetition penalty.

Engine backend on training-side sessions (a session seed, 999, disjoint from collect's), 6 system
rules + 1 turn rule, 5 samples each, 256 new tokens. For each ``T[:penalty]`` setting it prints and
writes the share of replies cut at the cap, their mean length, and the share of each reply's
verifiable rules it follows (all replies, and finished replies only: those are what pairs use).
Choosing a sampler setting here never looks at the evaluation suites.

    .venv/bin/python bench/truncation_probe.py --sessions 12 1.0 1.0:1.1 1.0:1.2 0.7:1.1 0.7:1.2

Writes ``bench/results/truncation_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reverso import constraints as engine
from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import load_params
from reverso.generation.base import GenerationSettings
from reverso.generation.factory import make_sampler
from reverso.prompts import as_dicts, session_constraints, turn_messages


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", help="TEMPERATURE[:REPETITION_PENALTY]")
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("bench/results/truncation_probe.json"))
    args = parser.parse_args()
    params = load_params("params.yaml")
    sessions = build_sessions(load_seed("data/seed"), "train", args.sessions, 999, turns=1, system_constraints=6,
                              turn_constraints=1, cumulative=True)
    sampler = make_sampler("engine", "models/base", None, engine=params.collect.sampler.engine)
    conversations = [as_dicts(turn_messages(s, 0, [])) for s in sessions]
    rules = [[c for c in session_constraints(s, 0) if engine.is_verifiable(c)] for s in sessions]
    results = []
    for spec in args.settings:
        temperature, _, penalty = spec.partition(":")
        settings = GenerationSettings(float(temperature), 0.95, args.max_new_tokens, 7, float(penalty or 1.0))
        started = time.perf_counter()
        outputs = sampler.generate(conversations, 5, settings)
        wall = time.perf_counter() - started
        rows = [(c, [v.passed for v in engine.check_all(r, c.text)]) for cs, r in zip(outputs, rules, strict=True)
                for c in cs]
        finished = [(c, passed) for c, passed in rows if c.finish_reason == "stop"]
        tokens = sum(c.completion_tokens for c, _ in rows)
        results.append({
            "temperature": settings.temperature, "repetition_penalty": settings.repetition_penalty,
            "replies": len(rows), "truncation": mean([c.finish_reason == "length" for c, _ in rows]),
            "mean_tokens": round(tokens / len(rows), 1), "tokens_per_s": round(tokens / wall, 1),
            "rule_accuracy": mean([mean(p) for _, p in rows if p]),
            "rule_accuracy_finished": mean([mean(p) for _, p in finished if p]),
            "all_rules_finished": mean([all(p) for _, p in finished]),
        })
        print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"sessions": args.sessions, "samples": 5, "max_new_tokens": args.max_new_tokens,
                                    "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
