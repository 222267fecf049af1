"""Parity: OpenVINO greedy (evaluate's settings) vs HF fp32 greedy on the evaluate suites (exact match + headline metrics).

Both backends answer the same suites (the project's own builders, multi-turn on each model's own
history) and are scored with the project's own metrics. Writes ``bench/results/parity.json``:
the exact-match rate over all answered turns (first turns separately: later turns may see
different histories) and, per suite, the headline metric of each backend and the difference.

    .venv/bin/python bench/parity.py --max-new-tokens 64   # 150 IFEval prompts + 10 Multi-IF + 5 SysBench
    .venv/bin/python bench/parity.py --weight-format int8 --precision default --out /tmp/parity_int8.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from reverso.config import load_params
from reverso.evaluate import generate_suites, score_model
from reverso.evaluate.metrics import HEADLINE, flatten
from reverso.evaluate.suites import build_suites
from reverso.generation import make_sampler
from reverso.machine import machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed-dir", type=Path, default=Path("data/seed"))
    parser.add_argument("--ifeval", type=int, default=150)
    parser.add_argument("--multi-if", type=int, default=10)
    parser.add_argument("--sysbench", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: evaluate.max_new_tokens")
    parser.add_argument("--weight-format", default=None, help="default: evaluate.openvino.weight_format")
    parser.add_argument("--precision", default=None, help="default: evaluate.openvino.precision")
    parser.add_argument("--out", type=Path, default=Path("bench/results/parity.json"))
    args = parser.parse_args()

    evaluate = load_params(args.params).evaluate
    params = evaluate.model_copy(update={
        "suites": evaluate.suites.model_copy(update={"ifeval": args.ifeval, "multi_if": args.multi_if,
                                                     "sysbench": args.sysbench}),
        "max_new_tokens": args.max_new_tokens or evaluate.max_new_tokens})
    engine_params = evaluate.openvino.model_copy(update={
        "weight_format": args.weight_format or evaluate.openvino.weight_format,
        "precision": args.precision or evaluate.openvino.precision})
    suites = build_suites(params, args.seed_dir)
    texts: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, backend in (("engine", "openvino"), ("hf_fp32", "hf")):
        sampler = make_sampler(backend, args.model, openvino=engine_params, batch_size=params.batch_size,
                               progress=False)
        started = time.perf_counter()
        texts[name] = generate_suites(sampler, suites, params)
        seconds[name] = round(time.perf_counter() - started, 1)
        del sampler
    metrics = {name: flatten(score_model(suites, texts[name])) for name in texts}
    pairs = [(a, b) for suite in suites for sa, sb in zip(texts["engine"][suite], texts["hf_fp32"][suite], strict=True)
             for a, b in zip(sa, sb, strict=False)]
    first = [(sa[0], sb[0]) for suite in suites for sa, sb in zip(texts["engine"][suite], texts["hf_fp32"][suite],
                                                                   strict=True)]
    headline = {}
    for suite in suites:
        key = HEADLINE[suite]
        engine_value, hf_value = metrics["engine"].get(key), metrics["hf_fp32"].get(key)
        headline[key] = {"engine": engine_value, "hf_fp32": hf_value,
                         "diff_points": None if engine_value is None or hf_value is None
                         else round(100 * (engine_value - hf_value), 2)}
    result = {
        "engine": f"openvino {__import__('openvino').__version__}",
        "engine_config": engine_params.model_dump(exclude={"cache_dir", "exporter"}),
        "reference": "HF transformers generate, float32, greedy",
        "prompts": {suite: len(items) for suite, items in suites.items()},
        "first_turn_prompts": len(first), "answered_turns": len(pairs),
        "exact_match_first_turn": round(sum(a == b for a, b in first) / len(first), 4),
        "exact_match_all_turns": round(sum(a == b for a, b in pairs) / len(pairs), 4),
        "headline": headline, "max_new_tokens": params.max_new_tokens, "generation_s": seconds,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
