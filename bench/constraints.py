"""Benchmark: constraint checks per second, reverso's engine vs lm-eval's IFEval checkers.

Same (response, constraint) rows for both, on the 25 shared ids, rounds interleaved in one run.
reverso checks every constraint of a response in one ``check_all`` call (shared per-response work);
lm-eval calls each checker's ``check_following``. Writes JSON with both rates, the ratio (target
>= 3x) and the agreement rate (target 100%).

    .venv/bin/python bench/constraints.py --out bench/results/constraints.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reverso import constraints as engine
from reverso.constraints.reference import cases, corpus, load_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/constraints.json"))
    args = parser.parse_args()

    registry = load_registry()
    constraints = cases(seed=2, per_id=3)
    texts = corpus(seed=1, count=args.responses)
    checkers = []
    for constraint in constraints:  # built once, outside the timed loop, as lm-eval's harness does
        checker = registry[constraint.id](constraint.id)
        checker.build_description(**constraint.kwargs)
        checkers.append(checker)
    context = engine.CheckContext(prompt="Tell me about rivers.")
    ours_s = theirs_s = 0.0
    agree = total = 0
    for _ in range(args.rounds):
        started = time.perf_counter()
        ours = [[v.passed for v in engine.check_all(constraints, text, context)] for text in texts]
        ours_s += time.perf_counter() - started
        started = time.perf_counter()
        theirs = [[bool(c.check_following(text)) for c in checkers] for text in texts]
        theirs_s += time.perf_counter() - started
        for mine, ref in zip(ours, theirs, strict=True):
            agree += sum(a == b for a, b in zip(mine, ref, strict=True))
            total += len(mine)
    checks = len(texts) * len(constraints) * args.rounds
    result = {
        "rows_per_round": len(texts) * len(constraints), "rounds": args.rounds, "constraint_ids": 25,
        "reverso_checks_per_s": round(checks / ours_s, 1), "lm_eval_checks_per_s": round(checks / theirs_s, 1),
        "speedup": round(theirs_s / ours_s, 2), "agreement": round(agree / total, 6),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
