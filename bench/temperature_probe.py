"""Probe (study recipe choice): truncation vs sampling temperature on 8 training-side sessions, engine, 256 tokens.

Run from the repo root on a prepared model: python bench/temperature_probe.py 0.7 1.0
"""
import json, sys, time
from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import load_params
from reverso.generation.factory import make_sampler
from reverso.generation.base import GenerationSettings
from reverso.prompts import turn_messages, as_dicts

p = load_params("params.yaml")
corpus = load_seed("data/seed")
sessions = build_sessions(corpus, "train", 8, 999, turns=1, system_constraints=6, turn_constraints=1,
                          cumulative=True)
sampler = make_sampler("engine", "models/base", None, engine=p.collect.sampler.engine)
convs = [as_dicts(turn_messages(s, 0, [])) for s in sessions]
out = {}
for temp in [float(t) for t in sys.argv[1:]]:
    t0 = time.time()
    res = sampler.generate(convs, 5, GenerationSettings(temp, 0.95, 256, 7))
    flat = [c for cs in res for c in cs]
    trunc = sum(c.finish_reason == "length" for c in flat) / len(flat)
    toks = sum(c.completion_tokens for c in flat)
    out[temp] = dict(truncation=round(trunc, 3), mean_tokens=toks / len(flat), tok_s=toks / (time.time() - t0))
    print(temp, out[temp], flush=True)
