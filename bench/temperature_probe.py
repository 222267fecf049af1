"""Probe (study recipe choice): truncation vs sampling temperature on 8 training-side sessions.

Engine backend, 6 system rules + 1 turn rule, 5 samples each, 256 new tokens, a session seed (999)
disjoint from collect's. Run from the repo root on a prepared model:

    .venv/bin/python bench/temperature_probe.py 0.7 1.0

Result of the run that chose the CPU study recipe (2026-11-25, quiet machine): T=0.7 cut 52.5 % of
40 replies at the cap (mean 196 tokens, 94 tokens/s); T=1.0 cut 47.5 % (mean 185 tokens, 81 tokens/s).
"""

from __future__ import annotations

import sys
import time

from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import load_params
from reverso.generation.base import GenerationSettings
from reverso.generation.factory import make_sampler
from reverso.prompts import as_dicts, turn_messages


def main(temperatures: list[float]) -> None:
    params = load_params("params.yaml")
    sessions = build_sessions(load_seed("data/seed"), "train", 8, 999, turns=1, system_constraints=6,
                              turn_constraints=1, cumulative=True)
    sampler = make_sampler("engine", "models/base", None, engine=params.collect.sampler.engine)
    conversations = [as_dicts(turn_messages(s, 0, [])) for s in sessions]
    for temperature in temperatures:
        started = time.perf_counter()
        outputs = sampler.generate(conversations, 5, GenerationSettings(temperature, 0.95, 256, 7))
        flat = [c for cs in outputs for c in cs]
        tokens = sum(c.completion_tokens for c in flat)
        print(temperature, {"truncation": round(sum(c.finish_reason == "length" for c in flat) / len(flat), 3),
                            "mean_tokens": round(tokens / len(flat), 1),
                            "tokens_per_s": round(tokens / (time.perf_counter() - started), 1)}, flush=True)


if __name__ == "__main__":
    main([float(t) for t in sys.argv[1:]])
