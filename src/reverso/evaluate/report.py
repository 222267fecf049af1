"""Evaluation artefacts people look at: a per-constraint PNG (base vs policy) and a markdown report.

The report leads with the headline metrics and their bootstrap CIs, then the paired differences the
promotion gate reads, then every metric; suites that could not be scored say why instead of a number.
"""

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


def _ci(interval: dict[str, Any] | None) -> str:
    if not interval or interval.get("mean") is None:
        return "not scored"
    if interval.get("ci_low") is None:
        return f"{interval['mean']:.3f}"
    return f"{interval['mean']:.3f} [{interval['ci_low']:.3f}, {interval['ci_high']:.3f}]"


def interval_tables(results: dict[str, Any], models: list[str]) -> list[str]:
    """Headline metrics with CIs per model, then paired differences (same prompts, same resamples)."""
    ci = results.get("ci") or {}
    headline = {h.split(".", 1)[1] for h in HEADLINE.values()}
    keys = sorted({k for m in models for k in ci.get(m, {})}, key=lambda k: (k.split(".", 1)[1] not in headline, k))
    if not keys:
        return []
    boot = results.get("bootstrap") or {}
    level = f"{100 * boot.get('confidence', 0.95):.0f} %"
    units = ", ".join(f"{k}: {v}" for k, v in (boot.get("units") or {}).items())
    lines = [f"## Metrics with {level} bootstrap CIs", "",
             f"Percentile bootstrap, {boot.get('resamples', '?')} resamples of the suite's units ({units}), "
             f"seed {boot.get('seed', '?')}.", "",
             "| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    lines += [f"| {key} | " + " | ".join(_ci(ci.get(m, {}).get(key)) for m in models) + " |" for key in keys]
    for label, diffs in (results.get("paired") or {}).items():
        lines += ["", f"### Paired difference {label} (same prompts, same resamples)", "",
                  "| metric | difference [CI] | units |", "|---|---|---|"]
        lines += [f"| {key} | {_ci(d)} | {d.get('n')} |" for key, d in diffs.items()]
    wide = (results.get("power") or {}).get("wider_than_target") or []
    if wide:
        lines += ["", f"**Underpowered:** CI half-width above {results['power']['target_halfwidth']} for "
                      + ", ".join(wide) + " — raise `evaluate.suites`."]
    return [*lines, ""]


def comparison_table(results: dict[str, Any], models: list[str]) -> list[str]:
    metrics = sorted({k for m in models for k in flatten(results[m]) if not k.startswith("per_constraint")},
                     key=lambda k: (k not in HEADLINE.values(), k))
    lines = ["| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for key in metrics:
        row = [_number(flatten(results[m]).get(key)) for m in models]
        name = f"**{key}**" if key in HEADLINE.values() else key
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines


def _number(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.3f}"


def truncation_lines(results: dict[str, Any], models: list[str]) -> list[str]:
    """How many answers each model ran out of tokens on: a cut answer fails end/length/JSON rules."""
    found = {m: results[m]["truncation"]["all"] for m in models if "truncation" in results.get(m, {})}
    if not found:
        return []
    cuts = ", ".join(f"{m} {100 * t['cut']:.1f} % of {t['answers']}" for m, t in found.items())
    return [f"Answers cut at `evaluate.max_new_tokens` (finish_reason length): {cuts}.", ""]


def write_report(results: dict[str, Any], models: list[str], path: Path, png_name: str) -> None:
    sizes = ", ".join(f"{suite}: {n}" for suite, n in results["suite_sizes"].items())
    champion = f" @champion is v{results['champion_version']}." if results.get("champion_version") else ""
    lines = ["# Evaluation report", "", f"Suites (prompts or sessions): {sizes}. Greedy decoding, identical "
             f"for every model.{champion}", "", *truncation_lines(results, models), *interval_tables(results, models),
             "## All metrics (headline in bold)", "", *comparison_table(results, models), "",
             f"![per-constraint pass rates]({png_name})", ""]
    unscored = results.get("not_scored") or {}
    if unscored:
        lines += ["## Not scored", ""] + [f"- {suite}: {reason}" for suite, reason in unscored.items()] + [""]
    unsupported = results.get("unsupported") or {}
    if any(unsupported.values()):
        lines += ["## Rows not evaluated", ""]
        for suite, rows in unsupported.items():
            for row in rows[:20]:
                lines.append(f"- {suite} row {row.get('row')}: {row.get('reason')}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
