"""Size a study from a pilot: what a replicate and an answer cost, how noisy the primary difference is.

Reads a finished study's records (``reports/study/eval/*.json``, ``reports/study/train/*.json``,
``data/study/data-*/pairs/replicate.json``, ``metrics/study.json``) and writes
``bench/results/study_design.json``:

- costs: seconds per training pair-pass (the median training's wall / (pairs x epochs)), per evaluated answer, per
  replicate's data (collect -> pairs);
- the primary difference's variance components: between replicates (seed + data draw) and within a
  replicate (prompt sampling: a bootstrap over query clusters), ``sigma2_rep = max(0, s2_between -
  mean within)``;
- a table of designs (replicates R, prompt units n, pairs per replicate x epochs) with the predicted
  95 % half-width, ``1.96 * sqrt(sigma2_rep / R + within * n_pilot / n)`` (the prompt term does not
  shrink with R: every replicate answers the same prompts), and the predicted CPU wall time.

    .venv/bin/python bench/study_design.py            # after `reverso study --recipe configs/study/cpu-pilot.yaml`
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from reverso.machine import machine_info
from reverso.study.report import arm_models, cluster_weights, headline_draws, turn_scores


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def replicate_differences(evals: dict[str, dict[str, Any]], a: str, b: str, suite: str,
                          resamples: int) -> tuple[list[float], list[float]]:
    """Per replicate: the a - b difference on all units, and its bootstrap variance over query clusters."""
    arms = arm_models(evals)
    clusters = next(iter(evals.values()))["clusters"][suite]
    weights = cluster_weights(clusters, resamples, seed=0)
    ones = np.ones((1, len(clusters)))
    points, within = [], []
    for k in range(max(len(arms[a]), len(arms[b]))):
        first, second = arms[a][k % len(arms[a])], arms[b][k % len(arms[b])]
        sa, sb = turn_scores(evals[first]["scores"][suite]), turn_scores(evals[second]["scores"][suite])
        points.append(float(headline_draws(suite, sa, ones)[0] - headline_draws(suite, sb, ones)[0]))
        within.append(float(np.var(headline_draws(suite, sa, weights) - headline_draws(suite, sb, weights))))
    return points, within


def costs(evals: dict[str, dict[str, Any]], trains: dict[str, dict[str, Any]], data: list[dict[str, Any]]) -> dict[str, Any]:
    answers = sum(sum(len(t) for s in r["outputs"].values() for t in s) for r in evals.values())
    eval_s = sum(float(r["wall_s"]) for r in evals.values())
    per_training = [(float(t["train_pairs"]) * float((t.get("regime") or {}).get("epochs", 1)), float(t["wall_s"]))
                    for t in trains.values()]
    passes = sum(n for n, _ in per_training)
    # the median training's rate: a training that stalled beside another torch job must not set the price
    rate = float(np.median([wall / n for n, wall in per_training if n])) if passes else None
    data_s = [float(d.get("wall_s", 0)) for d in data]
    return {"s_per_answer": round(eval_s / answers, 2) if answers else None, "answers": answers,
            "s_per_pair_pass": round(rate, 2) if rate else None, "pair_passes": passes,
            "s_per_replicate_data": round(float(np.mean(data_s)), 1) if data_s else None,
            "answers_per_model": answers // max(len(evals), 1)}


def designs(sigma2_rep: float, within: float, n_pilot: int, cost: dict[str, Any], arms: int,
            turns_per_unit: float) -> list[dict[str, Any]]:
    rows = []
    for replicates in (3, 5, 8):
        for units in (12, 48, 100, 200, 400):
            for pairs, epochs in ((30, 1), (100, 3), (400, 3)):
                half = 1.96 * math.sqrt(sigma2_rep / replicates + within * n_pilot / units)
                answers = units * turns_per_unit * (arms * replicates + 2)  # + base + A/A
                train = replicates * arms * pairs * epochs * (cost["s_per_pair_pass"] or 0)
                data = replicates * (cost["s_per_replicate_data"] or 0) * max(1, pairs / 30)
                hours = (answers * (cost["s_per_answer"] or 0) + train + data) / 3600
                rows.append({"replicates": replicates, "units": units, "pairs": pairs, "epochs": epochs,
                             "halfwidth_pts": round(half, 2), "cpu_hours": round(hours, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/study_design.json"))
    args = parser.parse_args()
    root = args.workspace
    study = json.loads((root / "metrics/study.json").read_text())
    # only this study's models: a folder may still hold another study's records (other arms)
    evals = {k: v for k, v in _load(root / "reports/study/eval").items() if k in study["arms"]}
    trains = {k: v for k, v in _load(root / "reports/study/train").items() if k in study["train"]}
    data = [json.loads(p.read_text()) for p in sorted((root / "data/study").glob("data-*/pairs/replicate.json"))]
    primary = study["primary"]
    a, b = primary["comparison"].split("_minus_")
    suite = primary["suite"]
    points, within = replicate_differences(evals, a, b, suite, args.resamples)
    between = float(np.var(points, ddof=1)) if len(points) > 1 else float("nan")
    mean_within = float(np.mean(within))
    sigma2_rep = max(0.0, between - mean_within)
    cost = costs(evals, trains, data)
    n_pilot = len(next(iter(evals.values()))["clusters"][suite])
    turns = cost["answers_per_model"] / max(sum(study["suite_sizes"].values()), 1)
    out = {"pilot": study["params"]["study"]["name"], "split": study["split"], "primary": primary,
           "replicate_differences_pts": [round(p, 2) for p in points], "between_var": round(between, 2),
           "within_var_mean": round(mean_within, 2), "sigma2_rep": round(sigma2_rep, 2), "units_pilot": n_pilot,
           "noise_floor": study.get("noise_floor"), "costs": cost,
           "designs": designs(sigma2_rep, mean_within, n_pilot, cost, len(study["params"]["study"]["arms"]), turns),
           "command": "bench/study_design.py", **machine_info()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("designs", "machine")}, indent=2))


if __name__ == "__main__":
    main()
