"""What a training run reports: metrics/train.json's summary, the curves JSON and the curves plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from reverso.machine import machine_info

# TRL scores accuracy on the margin-shifted score: a pair counts when beta*Delta beats the margin term.
TITLES = {"rewards/accuracies": "rewards/accuracies (β·Δ > margin term)",
          "rule_reading/couple_margin_sum": "rule reading: β·(Δ_A + Δ_B) per couple"}
CURVE_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
              "rule_reading/couple_margin_sum", "rule_reading/couples_reading")
PLOTTED = ("loss", "rewards/margins", "rewards/accuracies", "rule_reading/couple_margin_sum")


def _pick(row: dict[str, float], prefix: str = "") -> dict[str, float]:
    return {k: row[prefix + k] for k in CURVE_KEYS if prefix + k in row}


def readings(history: list[dict[str, float]], facts: Any) -> list[dict[str, Any]]:
    """The rule-reading diagnostic of every evaluation, from the log history (so a resumed run keeps them all)."""
    counts = Counter(rule for rules in facts.rule_types.values() for rule in rules) if facts is not None else {}
    found = []
    for h in history:
        if "eval_rule_reading/couples" not in h:
            continue
        row: dict[str, Any] = {"step": int(h["step"])}
        row.update({k.split("/", 1)[1]: h[k] for k in h if k.startswith("eval_rule_reading/")})
        row.update(couples=int(row["couples"]), pairs=int(row.get("pairs", 0)))
        row["type_accuracy"] = {k.split("/", 1)[1]: {"accuracy": h[k], "pairs": counts.get(k.split("/", 1)[1], 0)}
                                for k in sorted(h) if k.startswith("eval_type_accuracy/")}
        found.append(row)
    return found


def summarise(trainer: Any, result: Any, resume: Path | None, train_set: Any, eval_set: Any,
              digests: list[str], regime: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    # The trainer state holds the whole history, including steps before a resume.
    history = [{k: float(v) for k, v in h.items() if isinstance(v, (int, float))} for h in trainer.state.log_history]
    train_log = [h for h in history if "loss" in h]
    eval_log = [h for h in history if "eval_loss" in h]
    reading = readings(history, trainer.held_out_facts)
    metrics = {"train_loss": float(result.training_loss), "steps": int(result.global_step),
               "resumed_from": resume.name if resume else None, "world_size": len(digests),
               "ranks_agree": len(set(digests)) == 1, "rank_weight_digests": digests,
               "train_pairs": len(train_set), "eval_pairs": len(eval_set) if eval_set else 0,
               "regime": regime, "machine": machine_info(),  # CPU flags and versions: bf16 autocast depends on them
               "final": _pick(train_log[-1]) if train_log else {}, "first": _pick(train_log[0]) if train_log else {},
               # In-epoch batch margins are taken before each update and, with RPO's mirrored pairs, often
               # negative; the held-out pairs before and after training are the honest before/after.
               "held_out": {"before": _pick(eval_log[0], "eval_"), "after": _pick(eval_log[-1], "eval_")}
               if len(eval_log) >= 2 else {},
               # diagnostics.py: does the model's preference follow the rule text? (per evaluation)
               "rule_reading": {"before": reading[0], "after": reading[-1], "history": reading}
               if len(reading) >= 2 else {}}
    return metrics, [*train_log, *eval_log]


def curves(history: list[dict[str, float]]) -> dict[str, Any]:
    """plots/train_curves.json: one row per logged step, train and held-out values side by side."""
    rows = []
    for h in history:
        row = {"step": h["step"], **{k.replace("/", "_"): h[k] for k in CURVE_KEYS if k in h}}
        row.update({"eval_" + k.replace("/", "_"): h["eval_" + k] for k in CURVE_KEYS if "eval_" + k in h})
        rows.append(row)
    return {"curves": sorted(rows, key=lambda r: r["step"])}


def plot_curves(history: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in PLOTTED if any(k in h or "eval_" + k in h for h in history)]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3))
    for axis, key in zip(axes if len(keys) > 1 else [axes], keys, strict=False):
        for prefix, label in (("", "train batch"), ("eval_", "held-out pairs")):
            points = [(h["step"], h[prefix + key]) for h in history if prefix + key in h]
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
        if key.startswith("rule_reading"):
            axis.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")  # a model that ignores the rules
        axis.set_title(TITLES.get(key, key), fontsize="small")
        axis.set_xlabel("step")
        axis.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
