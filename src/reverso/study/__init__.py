"""study: does RPO beat plain DPO and the base model? Arms x seeds from the same pairs, one evaluation.

Arms are data (``study.arms``: name -> pair builder x loss x margin, config_train.ArmSpec), all
trained from the same collected responses and the same pairs stage. The defaults are the paper's:

- ``dpo``            count-based pairs on the original instruction, no margin (plain DPO, the baseline)
- ``rpo``            reversed pairs with the adaptive margin gamma * g
- ``rpo_no_margin``  reversed pairs, no margin (the paper's margin ablation)

Each arm x seed is one DVC stage item (``study-train@<arm>-<seed>``, ``study-evaluate@<arm>-<seed>``),
so a rerun skips every item that already finished. Evaluation decodes every model greedily on the
same suites (built once from ``evaluate.seed``, or ``study.validation_seed`` for the tuning split)
and stores per-session scores, so ``study-report`` can compute paired differences with bootstrap CIs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from reverso.config import EvaluateParams, Params, TrainParams, with_arm
from reverso.io import write_json

STUDY_MODELS = Path("models/study")
STUDY_TRAIN = Path("reports/study/train")
STUDY_EVAL = Path("reports/study/eval")
PARENT_MARKER = Path(".reverso/study/parent_run.json")


def item_name(arm: str, seed: int) -> str:
    return f"{arm}-{seed}"


def arm_train_params(params: Params, arm: str, seed: int) -> TrainParams:
    """The train section for one arm and seed: ``train`` with the arm's builder, loss and margin."""
    if arm not in params.study.arms:
        raise ValueError(f"unknown study arm {arm!r}; study.arms are {list(params.study.arms)}")
    return with_arm(params.train, arm, params.study.arms[arm], seed)


def study_digest(params: Params) -> str:
    """What makes two study runs comparable: data, train and evaluation settings (not the arm list)."""
    keys = {"collect": params.collect.model_dump(), "pairs": params.pairs.model_dump(),
            "train": params.train.model_dump(), "evaluate": params.evaluate.model_dump(),
            "split": params.study.split, "validation_seed": params.study.validation_seed,
            "model": params.model.model_dump()}
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parent_run(params: Params, workspace: str | Path = ".") -> str:
    """The study's MLflow parent run (created once per study digest); arm x seed runs are its children."""
    import mlflow

    from reverso import registry as reg

    reg.setup(params.registry.experiment, workspace)
    digest = study_digest(params)
    marker = Path(workspace) / PARENT_MARKER
    if marker.exists():
        known = json.loads(marker.read_text())
        if known.get("digest") == digest:
            return str(known["run_id"])
    with mlflow.start_run(run_name=f"study-{digest}-{params.study.split}") as run:
        mlflow.set_tags({"reverso.stage": "study", "reverso.study_digest": digest,
                         "reverso.study_split": params.study.split})
        mlflow.log_params({"arms": ",".join(params.study.arms), "seeds": ",".join(map(str, params.study.seeds)),
                           "split": params.study.split, "digest": digest})
    write_json(marker, {"digest": digest, "run_id": run.info.run_id})
    return run.info.run_id


def train_arm(params: Params, arm: str, seed: int, model_dir: Path, pairs_dir: Path,
              workspace: str | Path = ".") -> dict[str, Any]:
    """Train one arm x seed as a child run of the study; not registered (the report decides that).

    Under a multi-process launcher (``study.train_launcher``: accelerate, torchrun) every rank trains;
    only rank 0 touches MLflow and writes the item's outputs (the other ranks return ``{}``).
    """
    from reverso.train import is_main_process, train

    name = item_name(arm, seed)
    started = time.perf_counter()
    main = is_main_process()
    parent = parent_run(params, workspace) if main else None
    metrics = train(arm_train_params(params, arm, seed), params.registry, model_dir, pairs_dir,
                    Path(workspace) / STUDY_MODELS / name, Path(workspace) / STUDY_TRAIN / f"{name}.json",
                    Path(workspace) / STUDY_TRAIN / name, workspace, register=False,
                    run_name=f"study-{name}", parent_run_id=parent)
    if not main:
        return {}
    metrics.update(arm=arm, seed=seed, wall_s=round(time.perf_counter() - started, 1))
    write_json(Path(workspace) / STUDY_TRAIN / f"{name}.json", metrics)
    return metrics


def study_suites(params: Params, seed_dir: Path) -> tuple[EvaluateParams, dict[str, list[Any]]]:
    """The suites every study model answers: the test draw, or the disjoint validation draw."""
    from reverso.evaluate.suites import build_suites

    evaluate = params.evaluate
    if params.study.split == "validation":
        evaluate = evaluate.model_copy(update={"seed": params.study.validation_seed})
    return evaluate, build_suites(evaluate, seed_dir)


def suites_digest(suites: dict[str, list[Any]]) -> str:
    text = json.dumps({name: [s.model_dump(mode="json") for s in items] for name, items in suites.items()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluate_model(params: Params, name: str, model_dir: Path, adapter: Path | None, seed_dir: Path,
                   out: Path) -> dict[str, Any]:
    """Greedy answers of one model on the study suites, with per-session scores for paired bootstraps."""
    from reverso.evaluate import evaluate_models
    from reverso.evaluate.scoring import make_eval_judge
    from reverso.study.report import serialise

    started = time.perf_counter()
    evaluate, suites = study_suites(params, seed_dir)
    scores: dict[str, Any] = {}
    results, outputs, timing = evaluate_models({name: (model_dir, adapter)}, suites, evaluate,
                                               judge=make_eval_judge(evaluate.judge), scores=scores)
    record = {"model": name, "split": params.study.split, "suites_digest": suites_digest(suites),
              "suite_sizes": {k: len(v) for k, v in suites.items()}, "metrics": results[name],
              "scores": {suite: serialise(found) for suite, found in scores[name].items()},
              "outputs": outputs[name], "timing": timing, "wall_s": round(time.perf_counter() - started, 1)}
    write_json(out, record)
    return record


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def report_study(params: Params, workspace: str | Path = ".", study_json: Path = Path("metrics/study.json"),
                 report_dir: Path = Path("reports/study")) -> dict[str, Any]:
    """Combine every arm x seed evaluation into metrics/study.json, a markdown table and a plot; log them."""
    from reverso.study.report import build_report, write_outputs

    root = Path(workspace)
    expected = ["base", *(item_name(a, s) for a in params.study.arms for s in params.study.seeds)]
    evals = _load(root / STUDY_EVAL)
    missing = [name for name in expected if name not in evals]
    if missing:
        raise FileNotFoundError(f"study evaluations missing for {missing} in {root / STUDY_EVAL}: "
                                "run `reverso study` (or dvc repro study-evaluate)")
    evals = {name: evals[name] for name in expected}
    trains = {name: t for name, t in _load(root / STUDY_TRAIN).items() if name in expected}
    report = build_report(evals, trains, params.study.bootstrap, params.study.confidence)
    # Training + evaluation of every item; the study flow prints the end-to-end time (shared stages included).
    report["wall_s"] = round(sum(float(r.get("wall_s", 0)) for r in [*evals.values(), *trains.values()]), 1)
    report["split"] = params.study.split
    report["params"] = {"study": params.study.model_dump(), "train": params.train.model_dump(),
                        "pairs": params.pairs.model_dump(), "collect": params.collect.model_dump(),
                        "evaluate": params.evaluate.model_dump(), "model": params.model.model_dump()}
    report["promotion"] = promote_from_study(params, report, root)
    write_outputs(report, root / study_json, root / report_dir)
    _log_parent(params, report, root / report_dir, root)
    return report


def _log_parent(params: Params, report: dict[str, Any], report_dir: Path, workspace: Path) -> None:
    from reverso import registry as reg

    run_id = parent_run(params, workspace)
    flat: dict[str, float] = {}
    for key, per_suite in report["differences"].items():
        for suite, entry in per_suite.items():
            flat.update({f"{key}.{suite}.{k}": float(entry[k]) for k in ("mean", "ci_low", "ci_high")})
    for suite, per_arm in report["summary"].items():
        flat.update({f"{arm}.{suite}": float(e["mean"]) for arm, e in per_arm.items() if e.get("mean") is not None})
    reg.with_retries(lambda: _log_run(run_id, flat, report_dir), "study report logging")


def _log_run(run_id: str, metrics: dict[str, float], report_dir: Path) -> None:
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(report_dir), artifact_path="study")


def promote_from_study(params: Params, report: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """Register the first seed's RPO model as @challenger; move @champion only on the study's evidence.

    The RPO replicate registered is fixed in advance (the first seed), never the best-scoring one.
    Evidence: the paired RPO - base difference on ``study.primary_suite`` has a CI lower bound above
    ``promote.min_delta`` (points = 100 x the metric), and no other suite could regress by more than
    ``promote.max_regression`` (its CI lower bound is above -max_regression).
    """
    from reverso import registry as reg
    from reverso.train import TRAIN_INFO

    study, gate = params.study, params.promote
    if "rpo" not in study.arms or report["params"]["study"]["split"] != "test":
        return {"decision": "skipped", "reason": "promotion needs the rpo arm on the test split"}
    diffs = report["differences"].get("rpo_minus_base", {})
    primary = diffs.get(study.primary_suite)
    reasons = []
    if primary is None:
        reasons.append(f"no rpo - base difference on {study.primary_suite}")
    elif primary["ci_low"] <= 100 * gate.min_delta:
        reasons.append(f"{study.primary_suite}: rpo - base CI low {primary['ci_low']:+.2f} pts "
                       f"<= min_delta {100 * gate.min_delta:.2f}")
    for suite, entry in diffs.items():
        if suite != study.primary_suite and entry["ci_low"] < -100 * gate.max_regression:
            reasons.append(f"{suite}: rpo - base CI low {entry['ci_low']:+.2f} pts could regress beyond "
                           f"{100 * gate.max_regression:.1f}")
    promote = not reasons
    name = item_name("rpo", study.seeds[0])
    adapter = workspace / STUDY_MODELS / name
    info = json.loads((adapter / TRAIN_INFO).read_text())
    reg.setup(params.registry.experiment, workspace)
    version = _register(adapter, info, params.registry.model_name)
    evidence = {"study.primary": study.primary_suite, "study.split": study.split, "study.model": name,
                **({f"study.rpo_minus_base.{k}": round(v, 3) for k, v in primary.items()} if primary else {})}
    reg.tag_version(params.registry.model_name, version, {
        **evidence, "promotion.decision": "promoted" if promote else "rejected",
        "promotion.reason": "; ".join(reasons) or "study evidence"})
    reg.set_alias(params.registry.model_name, reg.CHALLENGER, version)
    if promote:
        reg.set_alias(params.registry.model_name, reg.CHAMPION, version)
    return {"decision": "promoted" if promote else "rejected", "version": version, "model": name,
            "reasons": reasons, "primary": primary}


def _register(adapter: Path, info: dict[str, Any], model_name: str) -> str:
    import mlflow

    from reverso import registry as reg
    from reverso.train.mlflow_model import log_policy

    with mlflow.start_run(run_id=info["run_id"]):
        logged = reg.with_retries(lambda: log_policy(str(adapter), str(Path(info["base_model"]).resolve())),
                                  "model logging")
    return reg.register_version(model_name, info["run_id"], logged.model_uri,
                                tags={"pairs": "rpo", "study": "true"}, model_id=logged.model_id)
