"""The short end-of-run summary ``reverso pipeline`` (and ``make run``) prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def render_summary(workspace: str | Path = ".") -> str:
    root = Path(workspace)
    pairs, train = _load(root / "metrics/pairs.json"), _load(root / "metrics/train.json")
    evaluation, promotion = _load(root / "metrics/eval.json"), _load(root / "metrics/promotion.json")
    lines = ["", "== reverso pipeline summary =="]
    if pairs:
        lines.append(f"pairs:     {pairs['rpo']['pairs']} RPO pairs (train {pairs['rpo']['train']}, "
                     f"eval {pairs['rpo']['eval']}), {pairs['dpo']['pairs']} DPO-baseline pairs")
    if train:
        held_out = train.get("held_out") or {}
        before, after = (held_out.get(k, {}).get("rewards/margins") for k in ("before", "after"))
        lines.append(f"train:     {train['steps']} steps, mean loss {train['train_loss']:.4f}"
                     + (f", held-out reward margin {before:.3f} -> {after:.3f}"
                        if before is not None and after is not None else ""))
        lines.append(f"registry:  reverso-policy version {train['version']} (@challenger), run {train['run_id']}")
    if evaluation:
        from reverso.evaluate.metrics import HEADLINE, flatten

        base, policy = flatten(evaluation["base"]), flatten(evaluation["policy"])
        for metric in HEADLINE.values():
            if metric in base:
                lines.append(f"eval:      {metric:<22} base {base[metric]:.3f} -> policy {policy[metric]:.3f}")
    if promotion:
        verdict = "promoted to @champion" if promotion.get("promote") else "not promoted"
        lines.append(f"promotion: {verdict}: {promotion.get('reason')}")
    lines += ["", "MLflow UI:  .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db  (then open http://127.0.0.1:5000)",
              "Plots:      plots/train_curves.png, plots/eval_per_constraint.png; report: plots/eval_report.md"]
    return "\n".join(lines)
