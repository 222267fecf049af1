"""Benchmark: how many greedy evaluation answers the token cap cuts, per cap (is a longer cap worth it?).

The base model answers the first turn of every evaluation prompt (``evaluate.suites`` sizes, or
``--ifeval/--multi-if/--sysbench``) greedily on evaluate's backend, once per cap; an answer is cut
when it ends at the cap instead of at EOS. A cap is worth its time only if answers cut at the
smaller one finish under the larger one. Writes ``bench/results/eval_cap.json`` (share cut per cap
with a 95 % CI over prompts, how many cut answers are loops (the reply repeats itself: no cap
finishes those), mean tokens, wall time, ``cpu_flags``).

    .venv/bin/python bench/eval_cap.py --caps 256 384 512 --ifeval 100 --multi-if 30 --sysbench 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reverso.config import load_params
from reverso.evaluate.stats import bootstrap_ci
from reverso.evaluate.suites import build_suites
from reverso.generation import GenerationSettings, make_sampler
from reverso.machine import machine_info
from reverso.prompts import as_dicts, turn_messages


def loops(text: str, window: int = 120, n: int = 6) -> bool:
    """A reply that repeats itself: under half of the word n-grams in its last ``window`` words are distinct."""
    words = text.split()[-window:]
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) >= 20 and len(set(grams)) / len(grams) < 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed-dir", type=Path, default=Path("data/seed"))
    parser.add_argument("--caps", type=int, nargs="+", default=[256, 384, 512])
    parser.add_argument("--ifeval", type=int, default=None)
    parser.add_argument("--multi-if", type=int, default=None)
    parser.add_argument("--sysbench", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/eval_cap.json"))
    args = parser.parse_args()
    evaluate = load_params(args.params).evaluate
    sizes = {k: v for k, v in {"ifeval": args.ifeval, "multi_if": args.multi_if, "sysbench": args.sysbench}.items()
             if v is not None}
    params = evaluate.model_copy(update={"suites": evaluate.suites.model_copy(update=sizes)})
    suites = build_suites(params, args.seed_dir)
    conversations = [as_dicts(turn_messages(s, 0, [])) for items in suites.values() for s in items]
    sampler = make_sampler(params.backend, args.model, openvino=params.openvino, batch_size=params.batch_size,
                           progress=False)
    results = []
    for cap in args.caps:
        started = time.perf_counter()
        answers = [row[0] for row in sampler.generate(conversations, 1, GenerationSettings(0.0, 1.0, cap, seed=0))]
        wall = time.perf_counter() - started
        cut = bootstrap_ci([a.finish_reason == "length" for a in answers])
        cut_loops = sum(a.finish_reason == "length" and loops(a.text) for a in answers)
        results.append({"max_new_tokens": cap, "cut": {k: (round(v, 4) if isinstance(v, float) else v)
                                                        for k, v in cut.items()},
                        "cut_looping": cut_loops, "answers": len(answers),
                        "mean_tokens": round(sum(a.completion_tokens for a in answers) / len(answers), 1),
                        "wall_s": round(wall, 1)})
        print(json.dumps(results[-1]), flush=True)
    out = {"backend": params.backend, "openvino": params.openvino.model_dump(exclude={"cache_dir", "exporter"}),
           "prompts": {name: len(items) for name, items in suites.items()}, "results": results, **machine_info()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
