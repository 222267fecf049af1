"""The short end-of-run summary ``reverso pipeline`` (and ``make run``) prints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return found if isinstance(found, dict) else {}


def _interval(diff: dict[str, Any]) -> str:
    """``+0.041 [+0.012, +0.070] (95% CI, n=400)``, or "not scored"."""
    if diff.get("mean") is None or diff.get("ci_low") is None:
        return "not scored"
    level = f"{100 * diff.get('confidence', 0.95):.0f}% CI"
    return f"{diff['mean']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] ({level}, n={diff.get('n')})"


def _confidence_note(evaluation: dict[str, Any]) -> str:
    power = evaluation.get("power") or {}
    widest = power.get("max_halfwidth")
    note = f"; widest headline CI +-{widest:.3f}" if widest is not None else ""
    if power.get("wider_than_target"):
        note += f" (above target {power['target_halfwidth']}: {', '.join(power['wider_than_target'])})"
    return note


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
        reading = train.get("rule_reading") or {}
        if reading.get("after", {}).get("couples"):
            first, last = reading["before"], reading["after"]
            lines.append(f"rules:     held-out couple margin sum {first['couple_margin_sum']:+.4f} -> "
                         f"{last['couple_margin_sum']:+.4f} over {last['couples']} couples "
                         f"(0 = ignores the rule text; > 0 in {last['couples_reading']:.0%} after training)")
        lines.append(f"registry:  reverso-policy version {train['version']} (@challenger), run {train['run_id']}")
    if evaluation:
        from reverso.evaluate.metrics import HEADLINE, flatten

        base, policy = flatten(evaluation["base"]), flatten(evaluation["policy"])
        paired = (evaluation.get("paired") or {}).get("policy-base") or {}
        for metric in HEADLINE.values():
            if metric in base and metric in policy:
                diff = paired.get(metric)
                lines.append(f"eval:      {metric:<22} base {base[metric]:.3f} -> policy {policy[metric]:.3f}"
                             + (f", paired diff {_interval(diff)}" if diff else ""))
        sizes = evaluation.get("suite_sizes")
        if sizes:
            lines.append("eval size: " + ", ".join(f"{suite} {n}" for suite, n in sizes.items())
                         + _confidence_note(evaluation))
        if evaluation.get("not_scored"):
            lines.append("not scored: " + "; ".join(f"{k}: {v}" for k, v in evaluation["not_scored"].items()))
    if promotion:
        verdict = "promoted to @champion" if promotion.get("promote") else "not promoted"
        lines.append(f"promotion: {verdict}: {promotion.get('reason')}")
        for label in ("vs_base", "vs_champion"):
            diff = promotion.get(label)
            if diff:
                lines.append(f"           {promotion.get('metric')} {label.replace('_', ' ')}: {_interval(diff)}")
    reference = compare_with_reference(evaluation, _committed(root, "metrics/eval.json"))
    drift = lock_drift(_committed(root, "dvc.lock"), _load_yaml(root / "dvc.lock")) if reference else None
    lines += reference[:1] + ([drift] if drift else []) + reference[1:]
    lines += ["", *_where_to_look(root, train),
              "MLflow UI:  mlflow ui --backend-store-uri sqlite:///mlflow.db  (then open http://127.0.0.1:5000)",
              "Plots:      plots/train_curves.png, plots/eval_per_constraint.png; report: plots/eval_report.md"]
    return "\n".join(lines)


def _where_to_look(root: Path, train: dict[str, Any]) -> list[str]:
    """The inspector site, the MLflow run and model version, and the Prefect flow run, when they exist."""
    lines = []
    site = root / "reports/index.html"
    if site.exists():
        lines.append(f"Inspector:  {site.resolve()}  (offline; open in a browser)")
    if train.get("run_id"):
        lines.append(f"MLflow:     run {train['run_id']}, model version {train.get('version', '?')} (@challenger)")
    flow_run = _load(root / ".reverso/flow-run.json")
    if flow_run.get("id"):
        where = flow_run.get("ui_url") or ("ephemeral Prefect API" if not flow_run.get("api_url") else flow_run["api_url"])
        lines.append(f"Prefect:    flow run {flow_run.get('name')} ({flow_run['id']}) of {flow_run.get('flow')}, {where}")
    return lines


def _committed(root: Path, path: str) -> dict[str, Any]:
    """``path`` (JSON or YAML) as committed at HEAD (the reference run), or {} outside a git checkout."""
    import yaml

    try:
        done = subprocess.run(["git", "-C", str(root), "show", f"HEAD:{path}"], capture_output=True, text=True,
                              check=False, timeout=30)
        found = yaml.safe_load(done.stdout) if done.returncode == 0 else {}
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError, yaml.YAMLError, subprocess.TimeoutExpired):
        return {}


def lock_drift(reference: dict[str, Any], current: dict[str, Any]) -> str | None:
    """How this run's dvc.lock differs from the committed reference run's: the stages whose params or
    code (``src/`` deps) differ, or None when either lock is missing."""
    before, after = reference.get("stages") or {}, current.get("stages") or {}
    if not before or not after:
        return None

    def code(stage: dict[str, Any]) -> dict[str, Any]:
        return {dep.get("path"): dep.get("md5") for dep in stage.get("deps") or [] if str(dep.get("path")).startswith("src/")}

    shared = [name for name in after if name in before]
    params = [name for name in shared if before[name].get("params") != after[name].get("params")]
    changed = [name for name in shared if code(before[name]) != code(after[name])]
    if not params and not changed:
        return "reference: this run used the committed run's params and code"
    parts = ([f"params differ in {', '.join(params)}"] if params else []) + (
        [f"code differs in {', '.join(changed)}"] if changed else [])
    return ("reference: " + "; ".join(parts) + " (the committed run is not this run's configuration: "
            "`make bench-pipeline` remakes it)")


def compare_with_reference(current: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """This run's policy metrics against the committed reference run's 95 % CIs, and whether the
    two ran on the same kind of machine (CPU flags and versions change samples and greedy answers)."""
    if not current or not reference:
        return []
    from reverso.evaluate.metrics import HEADLINE, flatten
    from reverso.machine import same_machine

    same = same_machine(reference.get("machine"), current.get("machine"))
    lines = ["reference: " + {True: "the committed run was made on this kind of machine (same CPU flags, versions)",
                              False: "the committed run was made on another machine (CPU flags or versions differ): "
                                     "samples and answers differ, compare against its CIs, not bare deltas",
                              None: "the committed run records no machine: differences may be the machine's"}[same]]
    policy, intervals = flatten(current.get("policy") or {}), (reference.get("ci") or {}).get("policy") or {}
    for metric in HEADLINE.values():
        ci, value = intervals.get(metric) or {}, policy.get(metric)
        if value is None or ci.get("ci_low") is None:
            continue
        inside = ci["ci_low"] <= value <= ci["ci_high"]
        lines.append(f"           {metric:<22} {value:.3f} vs reference {ci['mean']:.3f} "
                     f"[{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]: {'inside' if inside else 'OUTSIDE'} its 95% CI")
    return lines
