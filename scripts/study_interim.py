"""Interim reading of a study or search that has not finished: the models scored so far, paired against base.

    PYTHONPATH=<worktree>/src python scripts/study_interim.py <worktree> reports/search/interim.json [RECIPE]

Only validation-pool records are read (a worktree also holds the committed test-run records). With a
search recipe (arms with budgets), the search table and the score-vs-budget curves of the arms scored so
far are written beside the JSON (interim.md, interim_curves.png).
"""
import json
import sys
from pathlib import Path

from reverso.study.report import build_report

root = Path(sys.argv[1])
out = Path(sys.argv[2])
evals = {p.stem: json.loads(p.read_text()) for p in sorted((root / "reports/study/eval").glob("*.json"))}
evals = {k: v for k, v in evals.items() if v.get("split") == "validation"}  # the committed test-run records sit beside them
trains = {p.stem: json.loads(p.read_text()) for p in sorted((root / "reports/study/train").glob("*.json"))}
trained = [n for n in evals if n not in ("base", "aa")]
report = build_report(evals, {n: t for n, t in trains.items() if n in evals}, 2000, 0.95, seed=0,
                      primary=(trained[0].rsplit("-", 1)[0], "base"), primary_suite="multi_if")
keep = {k: report[k] for k in ("summary", "differences", "truncation", "train", "suite_sizes", "noise_floor")
        if k in report}
keep["note"] = ("interim: the models evaluated when the session stopped; validation pool only; with a recipe, "
                "search_selection is the recipe's rule applied to the arms scored so far")
keep["machine"] = next(iter(evals.values())).get("timing", {}).get("machine")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(keep, indent=2, default=str) + "\n")
for key, per_suite in report["differences"].items():
    print(key, {s: (round(e["mean"], 1), round(e["ci_low"], 1), round(e["ci_high"], 1)) for s, e in per_suite.items()})
print({k: v["cut"] for k, v in report["truncation"].items()})

if len(sys.argv) > 3:  # a search recipe: the table and curves of the arms scored so far
    from reverso.config import load_params, recipe_overrides
    from reverso.study.search import plot_curves, price_gap, render_search, search_rows, select

    arms = load_params(root / "params.yaml", recipe_overrides(Path(sys.argv[3]))).study.arms
    scored = {name: spec for name, spec in arms.items() if any(m.rsplit("-", 1)[0] == name for m in trained)}
    rows = search_rows(report, scored)
    base_cut = report["truncation"].get("base", {}).get("cut")
    keep["search_selection"] = selection = select(rows, report.get("noise_floor"))
    keep["search_gap"] = gap = price_gap(rows)
    out.write_text(json.dumps(keep, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(render_search(rows, base_cut, selection, gap), encoding="utf-8")
    plot_curves(rows, out.with_name(out.stem + "_curves.png"))
    print(out.with_suffix(".md").read_text())
