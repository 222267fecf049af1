"""evaluate: held-out suites (IFEval-, Multi-IF-, SysBench-style, plus official files), base vs policy.

Every model is decoded greedily with identical settings; multi-turn suites answer on the model's
own history. Results go to ``metrics/eval.json`` (DVC metrics), a PNG, a markdown report, the
training run in MLflow and tags on the registered version (read by the promotion gate).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reverso.collect.samplers import GenerationSettings, HFSampler
from reverso.config import EvaluateParams, RegistryParams
from reverso.contracts import Message, Session
from reverso.evaluate.loaders import LOADERS
from reverso.evaluate.metrics import SUITE_METRICS, flatten, per_constraint, score_sessions
from reverso.evaluate.report import plot_per_constraint, write_report
from reverso.evaluate.suites import build_suites
from reverso.io import write_json, write_jsonl
from reverso.prompts import as_dicts, turn_messages

OFFICIAL_METRICS = {"ifeval": "ifeval", "ifbench": "ifeval", "multi_if": "multi_if", "sysbench": "sysbench"}


def generate_suites(sampler: HFSampler, suites: dict[str, list[Session]], params: EvaluateParams) -> dict[str, list[list[str]]]:
    """Answer every turn of every session, batching all suites together turn by turn."""
    sessions = [(name, s) for name, items in suites.items() for s in items]
    histories: list[list[Message]] = [[] for _ in sessions]
    texts: list[list[str]] = [[] for _ in sessions]
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=params.max_new_tokens, seed=params.seed)
    for turn in range(max((len(s.turns) for _, s in sessions), default=0)):
        live = [i for i, (_, s) in enumerate(sessions) if turn < len(s.turns)]
        conversations = [as_dicts(turn_messages(sessions[i][1], turn, histories[i])) for i in live]
        for i, completions in zip(live, sampler.generate(conversations, 1, settings), strict=True):
            text = completions[0].text
            texts[i].append(text)
            session = sessions[i][1]
            histories[i] += [Message(role="user", content=session.turns[turn].user),
                             Message(role="assistant", content=text)]
    out: dict[str, list[list[str]]] = {name: [] for name in suites}
    for (name, _), answer in zip(sessions, texts, strict=True):
        out[name].append(answer)
    return out


def score_model(suites: dict[str, list[Session]], texts: dict[str, list[list[str]]]) -> dict[str, Any]:
    scores = {name: score_sessions(suites[name], texts[name]) for name in suites}
    result: dict[str, Any] = {}
    for name, suite_scores in scores.items():
        kind = name.removeprefix("official_")
        metric_fn = SUITE_METRICS[OFFICIAL_METRICS.get(kind, kind)]
        result[name] = metric_fn(suite_scores)
    result["per_constraint"] = per_constraint(list(scores.values()))
    return result


def load_official(params: EvaluateParams) -> tuple[dict[str, list[Session]], dict[str, list[dict[str, Any]]]]:
    suites, unsupported = {}, {}
    for name, path in params.official.model_dump().items():
        if path:
            loaded = LOADERS[name](path)
            if loaded.sessions:
                suites[f"official_{name}"] = loaded.sessions
            unsupported[f"official_{name}"] = loaded.unsupported
    return suites, unsupported


def evaluate_models(models: dict[str, tuple[Path, Path | None]], suites: dict[str, list[Session]],
                    params: EvaluateParams) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Generate + score for each named (base model dir, adapter or None)."""
    from reverso.prepare_model import load_model_and_tokenizer

    results, outputs, timing = {}, {}, {"generation_s": 0.0, "scoring_s": 0.0}
    for name, (model_dir, adapter) in models.items():
        model, tokenizer = load_model_and_tokenizer(model_dir, adapter)
        started = time.perf_counter()
        outputs[name] = generate_suites(HFSampler(model, tokenizer, batch_size=params.batch_size), suites, params)
        scored = time.perf_counter()
        results[name] = score_model(suites, outputs[name])
        timing["generation_s"] += scored - started
        timing["scoring_s"] += time.perf_counter() - scored
    return results, outputs, timing


def evaluate(
    params: EvaluateParams, registry: RegistryParams, model_dir: str | Path, policy_dir: str | Path,
    seed_dir: str | Path, metrics_out: str | Path, plots_dir: str | Path, outputs_out: str | Path,
    workspace: str | Path = ".",
) -> dict[str, Any]:
    """Score base and policy on every suite; write metrics, plots, report; log to MLflow."""
    model_dir, policy_dir, plots_dir = Path(model_dir), Path(policy_dir), Path(plots_dir)
    suites = build_suites(params, seed_dir)
    official, unsupported = load_official(params)
    suites.update(official)
    results, outputs, timing = evaluate_models({"base": (model_dir, None), "policy": (model_dir, policy_dir)},
                                               suites, params)
    results["suite_sizes"] = {name: len(items) for name, items in suites.items()}
    results["unsupported"] = unsupported
    base, policy = flatten(results["base"]), flatten(results["policy"])
    results["delta"] = {k: round(policy[k] - base[k], 4) for k in policy if k in base and "per_constraint" not in k}
    results["timing"] = timing
    write_json(metrics_out, results)
    write_jsonl(outputs_out, [
        {"suite": name, "session_id": s.session_id, "turns": [t.user for t in s.turns],
         "base": outputs["base"][name][i], "policy": outputs["policy"][name][i]}
        for name, items in suites.items() for i, s in enumerate(items)])
    plot_per_constraint(results, ["base", "policy"], plots_dir / "eval_per_constraint.png")
    write_report(results, ["base", "policy"], plots_dir / "eval_report.md", "eval_per_constraint.png")
    _log_to_mlflow(results, registry, policy_dir, plots_dir, workspace)
    return results


def _log_to_mlflow(results: dict[str, Any], registry: RegistryParams, policy_dir: Path, plots_dir: Path,
                   workspace: str | Path) -> None:
    import mlflow

    from reverso import registry as reg
    from reverso.train import TRAIN_INFO

    info = json.loads((policy_dir / TRAIN_INFO).read_text())
    reg.setup(registry.experiment, workspace)
    flat = {f"eval.{who}.{key}": value for who in ("base", "policy")
            for key, value in flatten(results[who]).items() if not key.startswith("per_constraint")}
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_metrics(flat)
        for name in ("eval_per_constraint.png", "eval_report.md"):
            mlflow.log_artifact(str(plots_dir / name), artifact_path="eval")
    reg.tag_version(info["model_name"], info["version"], {k: round(v, 4) for k, v in flat.items()})


def compare_versions(params: EvaluateParams, registry: RegistryParams, model_dir: str | Path, versions: list[str],
                     seed_dir: str | Path, out_dir: str | Path, workspace: str | Path = ".") -> dict[str, Any]:
    """Evaluate several registered versions (e.g. RPO vs DPO baseline) plus the base in one table."""
    import mlflow

    from reverso import registry as reg

    reg.setup(registry.experiment, workspace)
    models: dict[str, tuple[Path, Path | None]] = {"base": (Path(model_dir), None)}
    for version in versions:
        found = reg.client().get_model_version(registry.model_name, version)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=found.source))
        adapter = next(local.rglob("adapter_config.json"), None)
        if adapter is None:
            raise FileNotFoundError(f"version {version} of {registry.model_name}: no adapter in {found.source}")
        label = f"v{version} ({(found.tags or {}).get('pairs', '?')})"
        models[label] = (Path(model_dir), adapter.parent)
    suites = build_suites(params, seed_dir)
    results, _, _ = evaluate_models(models, suites, params)
    results["suite_sizes"] = {name: len(items) for name, items in suites.items()}
    out_dir = Path(out_dir)
    write_json(out_dir / "compare.json", results)
    plot_per_constraint(results, list(models), out_dir / "compare_per_constraint.png")
    write_report(results, list(models), out_dir / "compare.md", "compare_per_constraint.png")
    return results
