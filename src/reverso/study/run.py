"""The study entry point; what it does is in the package docstring (reverso/study/__init__.py)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from reverso.config import EvaluateParams, Params, TrainParams, with_arm
from reverso.io import write_json
from reverso.machine import machine_info

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
    from reverso import registry as reg

    reg.setup(params.registry.experiment, workspace)
    digest = study_digest(params)
    return reg.keyed_parent_run(
        Path(workspace) / PARENT_MARKER, "digest", digest, f"study-{digest}-{params.study.split}",
        {"reverso.stage": "study", "reverso.study_digest": digest, "reverso.study_split": params.study.split},
        {"arms": ",".join(params.study.arms), "seeds": ",".join(map(str, params.study.seeds)),
         "split": params.study.split, "digest": digest})


def train_arm(params: Params, arm: str, seed: int, model_dir: Path, pairs_dir: Path | None = None,
              workspace: str | Path = ".") -> dict[str, Any]:
    """Train one arm x replicate as a child run of the study; not registered (the report decides that).

    ``pairs_dir`` defaults to the replicate's own pairs (``data/study/data-<seed>/pairs``). Under a
    multi-process launcher (``study.train_launcher``: accelerate, torchrun) every rank trains; only
    rank 0 touches MLflow and writes the item's outputs (the other ranks return ``{}``).
    """
    from reverso.study.replicate import replicate_pairs, replicate_summary
    from reverso.train import StartFrom, is_main_process, train

    pairs_dir = pairs_dir or replicate_pairs(params, seed, workspace)
    name = item_name(arm, seed)
    started = time.perf_counter()
    main = is_main_process()
    parent = parent_run(params, workspace) if main else None
    source = params.study.arms[arm].init_from
    start = StartFrom(Path(workspace) / STUDY_MODELS / item_name(source, seed), reference="base") if source else None
    metrics = train(arm_train_params(params, arm, seed), params.registry, model_dir, pairs_dir,
                    Path(workspace) / STUDY_MODELS / name, Path(workspace) / STUDY_TRAIN / f"{name}.json",
                    Path(workspace) / STUDY_TRAIN / name, workspace, register=False,
                    run_name=f"study-{name}", parent_run_id=parent, start=start)
    if not main:
        return {}
    data = replicate_summary(seed, workspace)
    metrics.update(arm=arm, seed=seed, wall_s=round(time.perf_counter() - started, 1), pairs_dir=str(pairs_dir),
                   init_from=item_name(source, seed) if source else None,
                   data=json.loads(data.read_text()) if data.exists() else None)
    write_json(Path(workspace) / STUDY_TRAIN / f"{name}.json", metrics)
    return metrics


def study_suites(params: Params, seed_dir: Path) -> tuple[EvaluateParams, dict[str, list[Any]]]:
    """The suites every study model answers: the test pool, or the validation pool (disjoint personas,
    queries and topics; its own seed) — the only one a study may tune on."""
    from reverso.evaluate.suites import build_suites

    evaluate = params.evaluate
    if params.study.split == "validation":
        evaluate = evaluate.model_copy(update={"seed": params.study.validation_seed})
        return evaluate, build_suites(evaluate, seed_dir, pool="validation")
    return evaluate, build_suites(evaluate, seed_dir)


def source_query(session: Any) -> str:
    """The query text a suite prompt was built on (rules appended after a blank line are not part of it):
    prompts that share it are one cluster in the study's bootstrap."""
    return str(session.turns[0].user).split("\n\n", 1)[0]


def suites_digest(suites: dict[str, list[Any]]) -> str:
    text = json.dumps({name: [s.model_dump(mode="json") for s in items] for name, items in suites.items()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained_model(base: Path, trained: Path) -> tuple[Path, Path | None]:
    """(model folder, adapter or None) of a trained arm: a LoRA adapter on the base, or a whole fine-tuned
    model (an arm with ``lora: false``)."""
    if not (trained / "adapter_config.json").exists() and (trained / "config.json").exists():
        return trained, None
    return base, trained


def evaluate_model(params: Params, name: str, model_dir: Path, adapter: Path | None, seed_dir: Path,
                   out: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Greedy answers of one model on the study suites, with per-session scores for paired bootstraps."""
    from reverso.evaluate import evaluate_models
    from reverso.evaluate.scoring import make_eval_judge
    from reverso.study.report import serialise

    started = time.perf_counter()
    evaluate, suites = study_suites(params, seed_dir)
    scores: dict[str, Any] = {}
    finish: dict[str, Any] = {}
    results, outputs, timing = evaluate_models({name: (model_dir, adapter)}, suites, evaluate,
                                               judge=make_eval_judge(evaluate.judge), scores=scores, finish=finish,
                                               workspace=".")
    record = {"model": name, "split": params.study.split, "suites_digest": suites_digest(suites),
              "suite_sizes": {k: len(v) for k, v in suites.items()}, "metrics": results[name],
              "clusters": {suite: [source_query(s) for s in items] for suite, items in suites.items()},
              "scores": {suite: serialise(found) for suite, found in scores[name].items()},
              "outputs": outputs[name], "finish": finish[name], "truncation": results[name]["truncation"],
              "timing": timing, "wall_s": round(time.perf_counter() - started, 1),
              "machine": machine_info(),  # which CPU answered: items of one study may be scored on several
              **(extra or {})}
    write_json(out, record)
    return record


def evaluate_aa(params: Params, model_dir: Path, seed_dir: Path, workspace: str | Path = ".") -> dict[str, Any]:
    """The A/A model (the base with weights x (1 + study.aa_scale * N(0,1))) on the study suites."""
    from reverso.study.replicate import AA_MODEL, AA_NAME, perturbed_copy

    copy = Path(workspace) / AA_MODEL
    perturbation = perturbed_copy(Path(model_dir), copy, params.study.aa_scale, seed=params.evaluate.seed)
    return evaluate_model(params, AA_NAME, copy, None, seed_dir, Path(workspace) / STUDY_EVAL / f"{AA_NAME}.json",
                          extra={"perturbation": perturbation})


def evaluate_champion(params: Params, workspace: Path) -> dict[str, Any] | None:
    """The registry's @champion on the study suites (test split only; reused while the version is the same),
    so the promotion compares the challenger with it on the same prompts. None when there is no champion."""
    from reverso import registry as reg

    if params.study.split != "test":
        return None
    reg.setup(params.registry.experiment, workspace)
    version = reg.version_str(reg.alias_version(params.registry.model_name, reg.CHAMPION))
    if version is None:
        return None
    out = workspace / "reports/study/champion.json"  # not in STUDY_EVAL: the report stage depends on that
    if out.exists() and json.loads(out.read_text()).get("version") == version:
        return json.loads(out.read_text())
    adapter = reg.download_adapter(params.registry.model_name, version)
    return evaluate_model(params, "champion", workspace / "models/base", adapter, workspace / "data/seed", out,
                          extra={"version": version})


def expected_models(params: Params) -> list[str]:
    """Every evaluation the report needs: base, the A/A model (when study.aa_scale > 0), arm x replicate."""
    aa = ["aa"] if params.study.aa_scale > 0 else []
    return ["base", *aa, *(item_name(a, s) for a in params.study.arms for s in params.study.seeds)]


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def report_study(params: Params, workspace: str | Path = ".", study_json: Path = Path("metrics/study.json"),
                 report_dir: Path = Path("reports/study")) -> dict[str, Any]:
    """Combine every arm x seed evaluation into metrics/study.json, a markdown table and a plot; log them."""
    from reverso.study.report import build_report, write_outputs

    root = Path(workspace)
    expected = expected_models(params)
    evals = _load(root / STUDY_EVAL)
    missing = [name for name in expected if name not in evals]
    if missing:
        raise FileNotFoundError(f"study evaluations missing for {missing} in {root / STUDY_EVAL}: "
                                "run `reverso study` (or dvc repro study-evaluate)")
    evals = {name: evals[name] for name in expected}
    champion = evaluate_champion(params, root)
    if champion is not None:
        evals["champion"] = champion
    trains = {name: t for name, t in _load(root / STUDY_TRAIN).items() if name in expected}
    report = build_report(evals, trains, params.study.bootstrap, params.study.confidence,
                          primary=params.study.primary(), primary_suite=params.study.primary_suite)
    # Training + evaluation of every item; the study flow prints the end-to-end time (shared stages included).
    report["wall_s"] = round(sum(float(r.get("wall_s", 0)) for r in [*evals.values(), *trains.values()]), 1)
    report["split"] = params.study.split
    report["params"] = {"study": params.study.model_dump(), "train": params.train.model_dump(),
                        "pairs": params.pairs.model_dump(), "collect": params.collect.model_dump(),
                        "evaluate": params.evaluate.model_dump(), "model": params.model.model_dump()}
    from reverso.study.promotion import promote_from_study

    report["promotion"] = promote_from_study(params, report, evals, root)
    # Adapters are published from the test run only: a validation search must not replace them.
    report["published"] = publish_adapters(params, trains, root) if params.study.split == "test" else {}
    write_outputs(report, root / study_json, root / report_dir)
    from reverso.study.search import plot_curves, price_gap, render_search, search_rows, select

    rows = search_rows(report, params.study.arms)
    if rows:  # a search: arms at budgets, and the recipe's selection rule applied to them
        base_cut = report["truncation"].get("base", {}).get("cut")
        report["search"] = rows
        report["search_selection"] = select(rows, report.get("noise_floor"))
        report["search_gap"] = price_gap(rows)
        write_json(root / study_json, report)
        (root / report_dir / "search.md").write_text(
            render_search(rows, base_cut, report["search_selection"], report["search_gap"]), encoding="utf-8")
        plot_curves(rows, root / report_dir / "search_curves.png")
    _log_parent(params, report, root / report_dir, root)
    return report


PUBLISHED = Path("models/study")  # models/study/<arm>/: committed fp16 adapters (DVC keeps <arm>-<seed>/)


def publish_adapters(params: Params, trains: dict[str, dict[str, Any]], workspace: Path,
                     limit_mb: float = 10.0) -> dict[str, Any]:
    """Each arm's first-replicate adapter as fp16 safetensors + adapter_config under ``models/study/<arm>/``,
    with a README line per arm (data digest, params, MLflow run id), so anyone can re-score it."""
    import torch
    from safetensors.torch import load_file, save_file

    from reverso.train import TRAIN_INFO

    published, lines = {}, ["# Study adapters (first replicate of each arm, fp16 LoRA)", "",
                            "Load with PEFT on the base model (`models/base`, SmolLM2-135M-Instruct): "
                            "`PeftModel.from_pretrained(base, 'models/study/<arm>')`.", "",
                            "| arm | replicate | train data | pairs | loss · margin · builder | MLflow run | MB |",
                            "|---|---|---|---|---|---|---|"]
    for arm in params.study.arms:
        name = item_name(arm, params.study.seeds[0])
        source = workspace / STUDY_MODELS / name
        if not (source / "adapter_model.safetensors").exists():
            continue
        out = workspace / PUBLISHED / arm
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(source / "adapter_model.safetensors")).items()}
        save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
        (out / "adapter_config.json").write_text((source / "adapter_config.json").read_text())
        size = (out / "adapter_model.safetensors").stat().st_size / 2**20
        if size > limit_mb:
            raise ValueError(f"{out}: {size:.1f} MB fp16 adapter exceeds {limit_mb} MB; lower train.lora.r")
        info = json.loads((source / TRAIN_INFO).read_text())
        train = trains.get(name, {})
        spec = params.study.arms[arm]
        data = train.get("data") or {}
        published[arm] = {"path": str(PUBLISHED / arm), "model": name, "run_id": info.get("run_id"),
                          "pairs_md5": info.get("pairs_md5"), "mb": round(size, 2)}
        lines.append(f"| {arm} | {name} | collect seed {data.get('collect_seed', '?')}, pairs md5 "
                     f"{info.get('pairs_md5', '?')} | {train.get('train_pairs', '?')} | {'+'.join(t.type for t in spec.loss)} · "
                     f"{spec.margin} · {spec.builder} | {info.get('run_id', '?')} | {size:.1f} |")
    if published:
        (workspace / PUBLISHED / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return published


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
