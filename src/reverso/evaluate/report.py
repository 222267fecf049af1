"""Evaluation artefacts people look at: a per-constraint PNG (base vs policy) and a markdown report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverso.evaluate.metrics import HEADLINE, flatten


def plot_per_constraint(results: dict[str, Any], models: list[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sorted({cid for m in models for cid in results[m]["per_constraint"]})
    fig, axis = plt.subplots(figsize=(9, 0.32 * max(len(ids), 1) + 1.6))
    height = 0.8 / max(len(models), 1)
    for index, name in enumerate(models):
        values = [results[name]["per_constraint"].get(cid, 0.0) for cid in ids]
        offsets = [i - 0.4 + height * (index + 0.5) for i in range(len(ids))]
        axis.barh(offsets, values, height=height, label=name)
    axis.set_yticks(range(len(ids)), ids, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("strict pass rate, all suites")
    axis.set_xlim(0, 1)
    axis.legend(loc="lower right")
    axis.set_title("Per-constraint-type pass rate")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def comparison_table(results: dict[str, Any], models: list[str]) -> list[str]:
    metrics = sorted({k for m in models for k in flatten(results[m]) if not k.startswith("per_constraint")},
                     key=lambda k: (k not in HEADLINE.values(), k))
    lines = ["| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for key in metrics:
        row = [f"{flatten(results[m]).get(key, float('nan')):.3f}" for m in models]
        name = f"**{key}**" if key in HEADLINE.values() else key
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines


def write_report(results: dict[str, Any], models: list[str], path: Path, png_name: str) -> None:
    sizes = ", ".join(f"{suite}: {n}" for suite, n in results["suite_sizes"].items())
    lines = ["# Evaluation report", "", f"Suites (prompts or sessions): {sizes}. Greedy decoding, identical "
             "for every model. Headline metrics in bold.", "", *comparison_table(results, models), "",
             f"![per-constraint pass rates]({png_name})", ""]
    unsupported = results.get("unsupported") or {}
    if any(unsupported.values()):
        lines += ["## Rows not evaluated", ""]
        for suite, rows in unsupported.items():
            for row in rows[:20]:
                lines.append(f"- {suite} row {row.get('row')}: {row.get('reason')}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
