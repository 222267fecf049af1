"""The inspect entry point; what it does is in the package docstring (reverso/inspect/__init__.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from reverso.config import InspectParams
from reverso.inspect import charts as chart_specs
from reverso.inspect.eval_view import build_eval_view, improve_view, training_view
from reverso.inspect.headline import headline, per_constraint_plot, quarantine_rates, suites_plot, truncation_rate
from reverso.inspect.load import read_json
from reverso.inspect.pairs_view import build_pairs_view
from reverso.inspect.site import NAV, render_site
from reverso.io import write_json

PAGES = tuple(name for name, _ in NAV)
SITE_ARTIFACT_PATH = "inspector"


def _pair_counts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_builder = Counter((r["builder"], r["split"]) for r in records)
    return [{"builder": b, "pairs": sum(n for (x, _), n in by_builder.items() if x == b),
             "train": by_builder[(b, "train")], "eval": by_builder[(b, "eval")]}
            for b in sorted({r["builder"] for r in records})]


def run_links(root: Path) -> list[tuple[str, str]]:
    """Where to look next: the MLflow run and model version, the Prefect flow run (when recorded)."""
    train, promotion = read_json(root / "metrics/train.json"), read_json(root / "metrics/promotion.json")
    links = []
    if train.get("run_id"):
        links.append(("MLflow run", f"{train['run_id']} (experiment of params registry.experiment)"))
    if train.get("version"):
        links.append(("model version", f"v{train['version']} (@challenger)"
                      + (" → @champion" if promotion.get("promote") else "")))
    flow_run = read_json(root / ".reverso/flow-run.json")  # written by the Prefect pipeline flow
    if flow_run.get("id"):
        links.append(("Prefect flow run", f"{flow_run.get('name')} ({flow_run['id']}) of {flow_run.get('flow')}"
                      + (f", {flow_run['ui_url']}" if flow_run.get("ui_url") else "")))
    return links


def log_site(out_dir: Path, run_id: str, workspace: Path) -> str:
    """Log the pages as artefacts of the training run; returns what happened, in words."""
    import mlflow

    from reverso import registry as reg
    from reverso.tracking import TrackingUnreachable, ensure_reachable

    uri = reg.tracking_uri(workspace)
    try:  # the site is already on disk: an unreachable server costs seconds and a note, not the stage
        ensure_reachable(uri, budget_s=5.0)
    except TrackingUnreachable as exc:
        return f"not logged to MLflow: tracking server {uri} is unreachable ({type(exc).__name__})"
    mlflow.set_tracking_uri(uri)
    client = reg.client()
    try:
        client.get_run(run_id)
    except Exception as exc:  # unknown run (another tracking store) or unreachable server
        return f"not logged to MLflow: run {run_id} not found at {reg.tracking_uri(workspace)} ({type(exc).__name__})"
    for page in PAGES:
        reg.with_retries(lambda p=page: client.log_artifact(run_id, str(out_dir / p), SITE_ARTIFACT_PATH),
                         f"logging {page}", tries=2)
    return f"logged to MLflow run {run_id} under {SITE_ARTIFACT_PATH}/"


def inspect(params: InspectParams, workspace: str | Path = ".", out_dir: str | Path = "reports",
            headline_out: str | Path = "metrics/headline.json", plots_dir: str | Path = "plots") -> dict[str, Any]:
    """Build the site from the workspace's stage outputs; every input is optional."""
    root = Path(workspace)
    out_dir, plots_dir, metrics_dir = root / out_dir, root / plots_dir, root / "metrics"
    pairs_view = build_pairs_view(root, root / "data/pairs", root / "data/responses.jsonl",
                                  root / "data/verdicts.jsonl", metrics_dir / "pairs.json")
    eval_view = build_eval_view(root / "reports/eval_outputs.jsonl", metrics_dir / "eval.json")
    eval_view["training"] = training_view(read_json(metrics_dir / "train.json"))
    # the self-improving loop's curve, when `reverso improve` has run here (read as found: not a DVC dep of inspect)
    eval_view["improve"] = improve_view(read_json(metrics_dir / "improve.json"), plots_dir / "improve_curve.png")
    curves = read_json(plots_dir / "train_curves.json").get("curves") or []
    specs = {"suites": chart_specs.suites_chart(eval_view["summary"]),
             "per-constraint": chart_specs.per_constraint_chart(eval_view["per_constraint"]),
             "training": chart_specs.training_chart(curves),
             "margins": chart_specs.margins_chart(pairs_view["pairs"])}
    charts = {name: spec for name, spec in specs.items() if spec is not None}

    top = headline(metrics_dir, eval_view["summary"])
    write_json(root / headline_out, top)
    write_json(plots_dir / "eval_suites.json", suites_plot(eval_view["summary"]))
    write_json(plots_dir / "eval_per_constraint.json", per_constraint_plot(eval_view["per_constraint"]))

    collect = read_json(metrics_dir / "collect.json")
    index = {"headline": top, "truncation": truncation_rate(collect),
             "quarantine_rates": quarantine_rates(collect, read_json(metrics_dir / "reverse.json"),
                                                  read_json(metrics_dir / "pairs.json")),
             "quarantine_count": len(pairs_view["quarantine"]), "pair_counts": _pair_counts(pairs_view["pairs"]),
             "promotion": read_json(metrics_dir / "promotion.json"), "links": run_links(root)}
    sizes = render_site(out_dir, root, index, pairs_view, eval_view, charts, params.rows_per_page)
    run_id = read_json(metrics_dir / "train.json").get("run_id")
    mlflow_note = "MLflow logging off (inspect.log_to_mlflow: false)"
    if params.log_to_mlflow:
        mlflow_note = log_site(out_dir, run_id, root) if run_id else "not logged to MLflow: no run_id in metrics/train.json"
    return {"site": str(out_dir / "index.html"), "page_bytes": sizes, "pairs": len(pairs_view["pairs"]),
            "quarantined_rows": len(pairs_view["quarantine"]), "count_mismatches":
            sum(not c["ok"] for c in pairs_view["checks"]), "mlflow": mlflow_note, "headline": top}
