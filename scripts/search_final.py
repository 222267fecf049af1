"""The finished search's record: a search study's metrics/study.json (its `study-report`), with the recipe's
selection rule and the priced gap applied (reverso.study.search), as search.json, search.md and
search_curves.png in OUTDIR.

    PYTHONPATH=/work/main/src python scripts/search_final.py /work/search/metrics/study.json reports/search
"""
import json
import sys
from pathlib import Path

from reverso.study.search import plot_curves, price_gap, render_search, select

report = json.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rows = report["search"]
report["search_selection"] = selection = select(rows, report.get("noise_floor"))
report["search_gap"] = gap = price_gap(rows)
(out / "search.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
base_cut = report["truncation"].get("base", {}).get("cut")
(out / "search.md").write_text(render_search(rows, base_cut, selection, gap), encoding="utf-8")
plot_curves(rows, out / "search_curves.png")
print((out / "search.md").read_text())
