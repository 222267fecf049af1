"""Probe (sampler settings for collect): truncation and rule-following vs temperature and presence penalty.

On each of ``--backends`` (default collect.sampler.backend), training-side sessions (a session seed,
999, disjoint from collect's), 6 system rules + 1 turn rule, 5 samples each, 256 new tokens. For each
``T[:presence_penalty[:frequency_penalty]]`` setting it prints and writes the share of replies cut at the cap, their mean
length, and the share of each reply's verifiable rules it follows (all replies, and finished replies
only: those are what pairs use), each with a 95 % CI resampled over sessions.
Choosing a sampler setting here never looks at the evaluation suites.

    .venv/bin/python bench/truncation_probe.py --sessions 16 1.0 1.0:0.5 1.0:1.0 1.0:1.5
    .venv/bin/python bench/truncation_probe.py 1.0 --sessions 16 --backends openvino hf --out bench/results/truncation_backends.json

Writes ``bench/results/truncation_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import load_params
from reverso.generation.base import GenerationSettings
from reverso.evaluate.stats import bootstrap_ci, ratio_of_sums
from reverso.generation.factory import make_sampler
from reverso.machine import machine_info
from reverso.prompts import as_dicts, session_constraints, turn_messages


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else float("nan")


def session_statistics(outputs: list[list[Any]], rules: list[list[Any]]) -> dict[str, Any]:
    """Truncation, mean length and rule accuracy with 95 % CIs resampled over sessions (a session's
    5 replies share a prompt, so they are not independent)."""
    rows = []  # per session: cut, replies, tokens, sum of rule accuracies, finished, sum over finished
    for completions, active in zip(outputs, rules, strict=True):
        accuracy = [mean([v.passed for v in engine.check_all(active, c.text)]) if active else float("nan")
                    for c in completions]
        done = [c.finish_reason == "stop" for c in completions]
        rows.append([sum(not d for d in done), len(completions), sum(c.completion_tokens for c in completions),
                     sum(a for a in accuracy if a == a), sum(d for d, a in zip(done, accuracy, strict=True) if a == a),
                     sum(a for d, a in zip(done, accuracy, strict=True) if d and a == a)])
    def ci(numerator: int, denominator: int) -> dict[str, Any]:
        found = bootstrap_ci(rows, statistic=ratio_of_sums(numerator, denominator))
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in found.items()}
    return {"replies": sum(r[1] for r in rows), "tokens": sum(r[2] for r in rows),
            "truncation": ci(0, 1), "mean_tokens": ci(2, 1), "rule_accuracy": ci(3, 1),
            "rule_accuracy_finished": ci(5, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", help="TEMPERATURE[:PRESENCE_PENALTY[:FREQUENCY_PENALTY]]")
    parser.add_argument("--backends", nargs="+", default=None,
                        help="openvino hf ... (default: collect.sampler.backend); each setting runs on each")
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--weight-format", default=None, help="openvino: default collect.sampler.openvino's")
    parser.add_argument("--precision", default=None, help="openvino: default collect.sampler.openvino's")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("bench/results/truncation_probe.json"))
    args = parser.parse_args()
    params = load_params("params.yaml")
    sessions = build_sessions(load_seed("data/seed"), "train", args.sessions, 999, turns=1, system_constraints=6,
                              turn_constraints=1, cumulative=True)
    backends = args.backends or [params.collect.sampler.backend]
    openvino = params.collect.sampler.openvino.model_copy(update={
        k: v for k, v in {"weight_format": args.weight_format, "precision": args.precision}.items() if v})
    conversations = [as_dicts(turn_messages(s, 0, [])) for s in sessions]
    rules = [[c for c in session_constraints(s, 0) if engine.is_verifiable(c)] for s in sessions]
    results = []
    for backend in backends:
        sampler = make_sampler(backend, "models/base", None, openvino=openvino,
                               batch_size=params.collect.sampler.batch_size, progress=False)
        for spec in args.settings:
            temperature, presence, frequency = (spec.split(":") + ["0", "0"])[:3]
            settings = GenerationSettings(float(temperature), 0.95, args.max_new_tokens, 7, float(presence or 0),
                                          float(frequency or 0))
            started = time.perf_counter()
            outputs = sampler.generate(conversations, 5, settings)
            wall = time.perf_counter() - started
            statistics = session_statistics(outputs, rules)
            results.append({"backend": backend, "temperature": settings.temperature,
                            "presence_penalty": settings.presence_penalty,
                            "frequency_penalty": settings.frequency_penalty,
                            "tokens_per_s": round(statistics["tokens"] / wall, 1), **statistics})
            print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"sessions": args.sessions, "samples": 5, "max_new_tokens": args.max_new_tokens,
                                    "backends": backends, "openvino": openvino.model_dump(exclude={"cache_dir", "exporter"}),
                                    "results": results, **machine_info()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
