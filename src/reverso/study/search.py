"""The signal search's view of a study: arms at budgets, as a table and one score-vs-budget plot per arm.

A search is a study whose arms carry ``budget`` (example- or pair-passes, train.config.ArmSpec). Arms
whose specs are equal but for the budget form one *curve*, labelled by the first arm's name without a
trailing ``_b<budget>``. Each row holds, per suite, the arm's paired difference from the base with its
CI (the study report's own hierarchical bootstrap), the greedy truncation, the couple-margin diagnostic
and what the training cost.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

BUDGET_SUFFIX = re.compile(r"_b\d+$")


def curves(arms: dict[str, Any]) -> dict[str, str]:
    """Arm name -> its curve's label, for arms that set a budget."""
    label: dict[str, str] = {}
    found: dict[str, str] = {}
    for name, spec in arms.items():
        if spec.budget is None:
            continue
        key = spec.model_copy(update={"budget": None}).model_dump_json()
        found.setdefault(key, BUDGET_SUFFIX.sub("", name))
        label[name] = found[key]
    return label


def search_rows(report: dict[str, Any], arms: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm with a budget (first replicate's training facts), sorted by curve and budget."""
    labels = curves(arms)
    rows = []
    for name, curve in labels.items():
        spec = arms[name]
        train = next((t for model, t in sorted(report["train"].items()) if model.rsplit("-", 1)[0] == name), {})
        cut = [t["cut"] for model, t in report["truncation"].items() if model.rsplit("-", 1)[0] == name]
        after = (train.get("rule_reading") or {}).get("after") or {}
        regime = train.get("regime") or {}
        rows.append({
            "arm": name, "curve": curve, "budget": spec.budget, "builder": spec.builder,
            "lr": regime.get("learning_rate"), "per_step": regime.get("pairs_per_step"),
            "steps": train.get("steps"), "train_rows": train.get("train_pairs"),
            "minus_base": {suite: report["differences"].get(f"{name}_minus_base", {}).get(suite)
                           for suite in report["summary"]},
            "truncation": sum(cut) / len(cut) if cut else None,
            "couple_margin_sum": after.get("couple_margin_sum"), "couples_reading": after.get("couples_reading"),
            "train_wall_s": train.get("wall_s"),
        })
    return sorted(rows, key=lambda r: (r["curve"], r["budget"]))


SELECTION_SUITES = ("ifeval", "multi_if")


def select(rows: list[dict[str, Any]], noise_floor: dict[str, Any] | None,
           suites: tuple[str, ...] = SELECTION_SUITES) -> dict[str, Any]:
    """The search's selection rule (configs/search/cpu.yaml, written before the search), applied to its rows.

    score = the mean of the arm's differences from the base on ``suites``; an arm is eligible unless some
    suite's 95 % CI lies wholly below the A/A floor's difference on that suite; the eligible arm with the
    highest score is selected, ties to the smaller budget; the primary suite of the test run is the one
    where the selected arm's difference is larger. Without an A/A model (study.aa_scale 0) the floor is 0.
    """
    floor = (noise_floor or {}).get("difference") or {}
    scored, ineligible = [], {}
    for row in rows:
        entries = {suite: row["minus_base"].get(suite) for suite in suites}
        missing = [s for s, e in entries.items() if not e or e.get("mean") is None]
        if missing:
            ineligible[row["arm"]] = f"not scored on {', '.join(missing)}"
            continue
        below = [s for s, e in entries.items() if e["ci_high"] < (floor.get(s) or {}).get("mean", 0.0)]
        if below:
            ineligible[row["arm"]] = f"95 % CI wholly below the A/A floor on {', '.join(below)}"
            continue
        score = sum(e["mean"] for e in entries.values()) / len(entries)
        scored.append((round(score, 9), row, entries))
    if not scored:
        return {"selected": None, "ineligible": ineligible, "suites": list(suites)}
    score, row, entries = max(scored, key=lambda item: (item[0], -(item[1]["budget"] or 0)))
    primary = max(suites, key=lambda s: entries[s]["mean"])
    ranking = [{"arm": r["arm"], "score": s} for s, r, _ in sorted(scored, key=lambda i: (-i[0], i[1]["budget"] or 0))]
    return {"selected": row["arm"], "score": score, "primary_suite": primary,
            "primary_comparison": [row["arm"], "base"], "any_above_zero": score > 0,
            "ranking": ranking, "ineligible": ineligible, "suites": list(suites),
            "floor": {s: (floor.get(s) or {}).get("mean") for s in suites}}


MAX_DECADES = 8  # budgets past 10^8 passes are reported as such, not as numbers


def price_gap(rows: list[dict[str, Any]], target: float = 5.0,
              suites: tuple[str, ...] = SELECTION_SUITES) -> list[dict[str, Any]]:
    """What each curve predicts a gain of ``target`` points would cost: per curve and suite, the least-squares
    line of the difference from the base against log10(budget) (two budgets or more), the budget where the
    line reaches ``target`` and its training time at the curve's measured seconds per pass. A point
    extrapolation from one replicate's means: the CIs around each point are several points wide."""
    out = []
    for curve in sorted({r["curve"] for r in rows}):
        points = [r for r in rows if r["curve"] == curve and r["budget"]]
        seconds = [r["train_wall_s"] / r["budget"] for r in points if r.get("train_wall_s")]
        per_pass = sum(seconds) / len(seconds) if seconds else None
        for suite in suites:
            xy = [(math.log10(r["budget"]), r["minus_base"][suite]["mean"]) for r in points
                  if (r["minus_base"].get(suite) or {}).get("mean") is not None]
            entry: dict[str, Any] = {"curve": curve, "suite": suite, "budgets": len(xy), "target": target,
                                     "seconds_per_pass": per_pass}
            if len(xy) >= 2:
                mx, my = sum(x for x, _ in xy) / len(xy), sum(y for _, y in xy) / len(xy)
                sxx = sum((x - mx) ** 2 for x, _ in xy)
                slope = sum((x - mx) * (y - my) for x, y in xy) / sxx if sxx else 0.0
                entry["points_per_decade"] = slope
                if slope > 0:
                    entry["log10_budget_for_target"] = decades = mx + (target - my) / slope
                    if decades <= MAX_DECADES:  # beyond it the line says only "never, in practice"
                        budget = 10**decades
                        entry["budget_for_target"] = budget
                        entry["hours_for_target"] = budget * per_pass / 3600 if per_pass else None
            out.append(entry)
    return out


def _budget_cell(entry: dict[str, Any]) -> str:
    if entry.get("log10_budget_for_target", 0) > MAX_DECADES:
        return f"> 10^{MAX_DECADES}"
    if entry.get("budget_for_target") is not None:
        return f"{entry['budget_for_target']:,.0f}"
    return "n/a" if entry.get("points_per_decade") is None else "never (slope ≤ 0)"


def render_gap(gap: list[dict[str, Any]]) -> str:
    """The priced gap as a markdown table."""
    target = gap[0]["target"] if gap else 5.0
    lines = [f"| curve | suite | budgets | points per 10x budget | budget for +{target:g} | CPU hours |",
             "|---|---|---|---|---|---|"]
    for g in gap:
        slope, hours = g.get("points_per_decade"), g.get("hours_for_target")
        lines.append(f"| {g['curve']} | {g['suite']} | {g['budgets']} | "
                     f"{'n/a' if slope is None else f'{slope:+.2f}'} | {_budget_cell(g)} | "
                     f"{'n/a' if hours is None else f'{hours:,.1f}'} |")
    return "\n".join(lines) + "\n"


def _ci(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    return f"{entry['mean']:+.1f} [{entry['ci_low']:+.1f}, {entry['ci_high']:+.1f}]"


def render_table(rows: list[dict[str, Any]], base_truncation: float | None) -> str:
    """The search table (markdown): one row per arm x budget."""
    suites = sorted({s for r in rows for s in r["minus_base"]})
    head = ("| curve | budget | steps | lr | " + " | ".join(f"{s} − base" for s in suites)
            + " | cut (base {}) | couple-margin sum | train s |".format(
                "n/a" if base_truncation is None else f"{100 * base_truncation:.0f} %"))
    lines = [head, "|" + "---|" * (len(suites) + 7)]
    for r in rows:
        margin = "n/a" if r["couple_margin_sum"] is None else f"{r['couple_margin_sum']:+.3f}"
        cut = "n/a" if r["truncation"] is None else f"{100 * r['truncation']:.0f} %"
        lines.append(f"| {r['curve']} | {r['budget']} | {r['steps']} | {r['lr']} | "
                     + " | ".join(_ci(r["minus_base"].get(s)) for s in suites)
                     + f" | {cut} | {margin} | {r['train_wall_s']} |")
    return "\n".join(lines) + "\n"


def render_selection(selection: dict[str, Any]) -> str:
    """The selection rule's outcome as a short markdown paragraph (below the search table)."""
    if selection.get("selected") is None:
        return "\n**Selection:** no arm is eligible ({}).\n".format(
            "; ".join(f"{a}: {why}" for a, why in selection["ineligible"].items()) or "no rows")
    lines = [f"\n**Selection** (score = mean of {' and '.join(selection['suites'])} − base): "
             f"**{selection['selected']}**, score {selection['score']:+.2f}; primary suite of the test run: "
             f"{selection['primary_suite']}" + ("" if selection["any_above_zero"] else
                                                 " (no score above 0: the search found nothing)") + ".",
             "", "| rank | arm | score |", "|---|---|---|"]
    lines += [f"| {i} | {r['arm']} | {r['score']:+.2f} |" for i, r in enumerate(selection["ranking"], 1)]
    lines += [f"| – | {arm} | ineligible: {why} |" for arm, why in selection["ineligible"].items()]
    return "\n".join(lines) + "\n"


def render_search(rows: list[dict[str, Any]], base_truncation: float | None, selection: dict[str, Any],
                  gap: list[dict[str, Any]]) -> str:
    """search.md: the table, the selection rule's outcome and the priced gap."""
    return (render_table(rows, base_truncation) + render_selection(selection)
            + "\nWhat each curve predicts +5 points would cost (a line through its means in log budget, at its "
              "measured seconds a pass):\n\n" + render_gap(gap))


def plot_curves(rows: list[dict[str, Any]], png: Path) -> None:
    """Score minus base (with its CI) against budget, one line per curve, one panel per suite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = sorted({s for r in rows for s in r["minus_base"]})
    fig, axes = plt.subplots(1, max(len(suites), 1), figsize=(5.5 * max(len(suites), 1), 4), squeeze=False)
    for axis, suite in zip(axes[0], suites, strict=False):
        for curve in sorted({r["curve"] for r in rows}):
            points = [(r["budget"], r["minus_base"].get(suite)) for r in rows if r["curve"] == curve]
            points = [(b, e) for b, e in points if e and e.get("mean") is not None]
            if not points:
                continue
            budgets = [b for b, _ in points]
            means = [e["mean"] for _, e in points]
            errors = [[m - e["ci_low"] for (_, e), m in zip(points, means, strict=True)],
                      [e["ci_high"] - m for (_, e), m in zip(points, means, strict=True)]]
            axis.errorbar(budgets, means, yerr=errors, marker="o", capsize=3, label=curve)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_xlabel("budget (example- or pair-passes)")
        axis.set_ylabel(f"{suite}: arm − base (points, 95 % CI)")
        axis.set_title(f"{suite} (validation pool)")
        axis.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
