"""The evaluate entry point; what it does is in the package docstring (reverso/evaluate/__init__.py)."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any, TypedDict

from reverso.config import ConfigError, EvaluateParams, RegistryParams
from reverso.contracts import Message, Session
from reverso.generation import GenerationSettings, Sampler, make_sampler
from reverso.evaluate import answer_cache
from reverso.evaluate.loaders import LOADERS
from reverso.evaluate.metrics import flatten
from reverso.evaluate.report import plot_per_constraint, write_report
from reverso.evaluate.scoring import (
    Scores,
    confidence_report,
    evidence,
    make_eval_judge,
    metrics_from_scores,
    score_outputs,
    unscored_suites,
)
from reverso.evaluate.suites import build_suites
from reverso.io import write_json, write_jsonl
from reverso.machine import machine_info
from reverso.memory import return_freed_memory
from reverso.prompts import as_dicts, turn_messages


class Answer(TypedDict):
    """How one evaluation answer ended: ``stop`` (EOS) or ``length`` (cut at max_new_tokens), and its tokens."""

    finish_reason: str
    tokens: int


def generate_suites(sampler: Sampler, suites: dict[str, list[Session]], params: EvaluateParams,
                    finish: dict[str, list[list[Answer]]] | None = None) -> dict[str, list[list[str]]]:
    """Answer every turn of every session, batching all suites together turn by turn.

    ``finish`` (a dict) receives, per suite, session and turn, how each answer ended and its length.
    """
    sessions = [(name, s) for name, items in suites.items() for s in items]
    histories: list[list[Message]] = [[] for _ in sessions]
    texts: list[list[str]] = [[] for _ in sessions]
    ends: list[list[Answer]] = [[] for _ in sessions]
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=params.max_new_tokens, seed=params.seed)
    for turn in range(max((len(s.turns) for _, s in sessions), default=0)):
        live = [i for i, (_, s) in enumerate(sessions) if turn < len(s.turns)]
        conversations = [as_dicts(turn_messages(sessions[i][1], turn, histories[i])) for i in live]
        for i, completions in zip(live, sampler.generate(conversations, 1, settings), strict=True):
            text = completions[0].text
            texts[i].append(text)
            ends[i].append({"finish_reason": completions[0].finish_reason,
                            "tokens": completions[0].completion_tokens})
            session = sessions[i][1]
            histories[i] += [Message(role="user", content=session.turns[turn].user),
                             Message(role="assistant", content=text)]
    out: dict[str, list[list[str]]] = {name: [] for name in suites}
    for (name, _), answer, end in zip(sessions, texts, ends, strict=True):
        out[name].append(answer)
        if finish is not None:
            finish.setdefault(name, []).append(end)
    return out


def truncation(finish: dict[str, list[list[Answer]]]) -> dict[str, dict[str, float]]:
    """Per suite (and ``all``): the share of answers cut at ``max_new_tokens``, their count, mean tokens."""
    def summary(answers: list[Answer]) -> dict[str, float]:
        cut = sum(a["finish_reason"] == "length" for a in answers)
        return {"cut": round(cut / len(answers), 4) if answers else 0.0, "answers": len(answers),
                "mean_tokens": round(sum(a["tokens"] for a in answers) / len(answers), 1) if answers else 0.0}

    per_suite = {name: [a for session in sessions for a in session] for name, sessions in finish.items()}
    return {**{name: summary(answers) for name, answers in per_suite.items()},
            "all": summary([a for answers in per_suite.values() for a in answers])}


def score_model(suites: dict[str, list[Session]], texts: dict[str, list[list[str]]], judge: Any = None,
                keep: Scores | None = None) -> dict[str, Any]:
    """Suite metrics for one model's answers; ``keep`` (a dict) receives the per-turn scores."""
    scores = score_outputs(suites, texts, judge)
    if keep is not None:
        keep.update(scores)
    return metrics_from_scores(scores)


def load_official(params: EvaluateParams) -> tuple[dict[str, list[Session]], dict[str, list[dict[str, Any]]]]:
    suites, unsupported = {}, {}
    for name, path in params.official.model_dump().items():
        if path:
            loaded = LOADERS[name](path)
            if loaded.sessions:
                suites[f"official_{name}"] = loaded.sessions
            unsupported[f"official_{name}"] = loaded.unsupported
    return suites, unsupported


def served_adapter(params: EvaluateParams, name: str, adapter: Path | None) -> str | None:
    """backend openai: the name the server serves model ``name``'s adapter under (None for the base)."""
    if params.backend != "openai" or adapter is None:
        return None
    served = params.served_adapters.get(name)
    if not served:
        raise ConfigError(
            f"evaluate.backend=openai cannot load the {name} adapter ({adapter}) into the server: serve it "
            f"(e.g. `vllm serve <base> --enable-lora --lora-modules {name}=<adapter dir>`) and set "
            f"evaluate.served_adapters.{name}, or evaluate on backend vllm, openvino or hf (docs/scale-out.md)")
    return served


def evaluate_models(models: dict[str, tuple[Path, Path | None]], suites: dict[str, list[Session]],
                    params: EvaluateParams, judge: Any = None, scores: dict[str, Scores] | None = None,
                    finish: dict[str, dict[str, list[list[Answer]]]] | None = None,
                    workspace: str | Path | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Generate + score for each named (base model dir, adapter or None); ``scores`` gets per-turn scores,
    ``finish`` each answer's finish reason and length; ``results[name]["truncation"]`` summarises them.
    With a ``workspace`` and ``evaluate.reuse_answers``, a model that answered the same prompts with the
    same settings on this CPU before is not asked again (evaluate/answer_cache.py); ``timing["reused"]``
    names those models."""
    cache = answer_cache.folder(params, workspace) if workspace is not None else None
    bases = {d: answer_cache.base_digest(d) for d in {m for m, _ in models.values()}} if cache else {}
    results, outputs = {}, {}
    timing: dict[str, Any] = {"generation_s": 0.0, "scoring_s": 0.0, "reused": []}
    served = {name: served_adapter(params, name, adapter) for name, (_, adapter) in models.items()}  # fail early
    for name, (model_dir, adapter) in models.items():
        started = time.perf_counter()
        ends: dict[str, list[list[Answer]]] = {} if finish is None else finish.setdefault(name, {})
        key = answer_cache.answer_key(params, bases[model_dir], adapter, suites) if cache else None
        stored = answer_cache.load(cache, key) if cache and key else None
        if stored is not None:
            outputs[name] = stored[0]
            ends.update(stored[1])
            timing["reused"].append(name)
        else:
            outputs[name] = _answer(params, model_dir, adapter, served[name], suites, ends)
            if cache and key:
                answer_cache.save(cache, key, outputs[name], ends)
        scored = time.perf_counter()
        results[name] = score_model(suites, outputs[name], judge, None if scores is None else scores.setdefault(name, {}))
        results[name]["truncation"] = truncation(ends)
        timing["generation_s"] += scored - started
        timing["scoring_s"] += time.perf_counter() - scored
    return results, outputs, timing


def _answer(params: EvaluateParams, model_dir: Path, adapter: Path | None, served_as: str | None,
            suites: dict[str, list[Session]], ends: dict[str, list[list[Answer]]]) -> dict[str, list[list[str]]]:
    """One model's greedy answers on every suite. evaluate.backend: openvino (a cached export of base +
    merged adapter, f32), hf, vllm (base + merged adapter, cached) or openai (the server serves base and
    adapters; served_adapters names them)."""
    sampler = make_sampler(params.backend, model_dir, adapter, openvino=params.openvino,
                           batch_size=params.batch_size, server=params, seed=params.seed,
                           served_as=served_as, section="evaluate")
    try:
        return generate_suites(sampler, suites, params, ends)
    finally:  # one model's engine at a time: the next model's merge and export must not stack on it
        if hasattr(sampler, "close"):
            sampler.close()
        del sampler
        gc.collect()
        return_freed_memory()


def evaluate(
    params: EvaluateParams, registry: RegistryParams, model_dir: str | Path, policy_dir: str | Path,
    seed_dir: str | Path, metrics_out: str | Path, plots_dir: str | Path, outputs_out: str | Path,
    workspace: str | Path = ".", pool: Pool = "eval",
) -> dict[str, Any]:
    """Score base, policy (and @champion) on every suite with CIs; write metrics, plots, report; log to MLflow.

    ``pool``: the seed corpus' test pool (``eval``) or ``validation`` (what a tuning loop decides on).
    """
    model_dir, policy_dir, plots_dir = Path(model_dir), Path(policy_dir), Path(plots_dir)
    suites = build_suites(params, seed_dir, pool)
    official, unsupported = load_official(params)
    suites.update(official)
    models: dict[str, tuple[Path, Path | None]] = {"base": (model_dir, None), "policy": (model_dir, policy_dir)}
    champion = _champion(params, registry, policy_dir, workspace)
    if champion is not None:
        models["champion"] = (model_dir, champion[1])
    scores: dict[str, Scores] = {}
    finish: dict[str, dict[str, list[list[Answer]]]] = {}
    results, outputs, timing = evaluate_models(models, suites, params, make_eval_judge(params.judge), scores,
                                               finish, workspace=workspace)
    names = list(models)
    results["models"] = names
    results["champion_version"] = champion[0] if champion else None
    results["suite_sizes"] = {name: len(items) for name, items in suites.items()}
    results["pool"] = pool
    results["unsupported"] = unsupported
    results["not_scored"] = unscored_suites(results, names)
    base, policy = flatten(results["base"]), flatten(results["policy"])
    results["delta"] = {k: round(policy[k] - base[k], 4) for k in policy if k in base and "per_constraint" not in k}
    results.update(confidence_report(scores, params))
    results["timing"] = timing
    results["machine"] = machine_info()  # greedy answers differ between CPUs: comparisons check this
    write_json(metrics_out, results)
    write_jsonl(outputs_out, [
        {"suite": name, "session_id": s.session_id, "turns": [t.user for t in s.turns],
         **{who: outputs[who][name][i] for who in names},
         # per model and turn: "stop" or "length" (cut at evaluate.max_new_tokens) and generated tokens
         "finish": {who: finish[who][name][i] for who in names if name in finish.get(who, {})},
         # per turn and model: the strict verdict of each active rule (the inspector ranks won/lost prompts by it)
         "verdicts": {who: [{"constraint_ids": list(turn.constraint_ids), "strict": list(turn.strict)}
                            for turn in scores[who][name][i]] for who in names if name in scores.get(who, {})}}
        for name, items in suites.items() for i, s in enumerate(items)])
    plot_per_constraint(results, names, plots_dir / "eval_per_constraint.png")
    write_report(results, names, plots_dir / "eval_report.md", "eval_per_constraint.png")
    _log_to_mlflow(results, registry, policy_dir, plots_dir, workspace)
    return results


def _champion(params: EvaluateParams, registry: RegistryParams, policy_dir: Path,
              workspace: str | Path) -> tuple[str, Path] | None:
    """(version, adapter) of the current @champion, unless there is none or it is this policy."""
    if not params.with_champion:
        return None
    from reverso import registry as reg
    from reverso.train import TRAIN_INFO

    reg.setup(registry.experiment, workspace)
    found = reg.version_str(reg.alias_version(registry.model_name, reg.CHAMPION))
    info = json.loads((policy_dir / TRAIN_INFO).read_text())
    if found is None or found == str(info.get("version")):
        return None
    return found, reg.download_adapter(registry.model_name, found)


def _log_to_mlflow(results: dict[str, Any], registry: RegistryParams, policy_dir: Path, plots_dir: Path,
                   workspace: str | Path) -> None:
    import mlflow

    from reverso import registry as reg
    from reverso.train import TRAIN_INFO

    info = json.loads((policy_dir / TRAIN_INFO).read_text())
    reg.setup(registry.experiment, workspace)
    flat = {f"eval.{who}.{key}": value for who in results["models"]
            for key, value in flatten(results[who]).items() if not key.startswith("per_constraint")}
    for label, diffs in results["paired"].items():
        for key, diff in diffs.items():
            flat.update({f"eval.paired.{label}.{key}.{part}": diff[part] for part in ("mean", "ci_low", "ci_high")
                         if diff[part] is not None})
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_metrics(flat)
        mlflow.log_dict(evidence(results), "eval/evidence.json")
        for name in ("eval_per_constraint.png", "eval_report.md"):
            mlflow.log_artifact(str(plots_dir / name), artifact_path="eval")
    tags = {k: round(v, 4) for k, v in flat.items() if k.startswith(("eval.policy.", "eval.base."))}
    tags["eval.evidence"] = json.dumps(evidence(results), sort_keys=True)
    reg.tag_version(info["model_name"], info["version"], tags)


def compare_versions(params: EvaluateParams, registry: RegistryParams, model_dir: str | Path, versions: list[str],
                     seed_dir: str | Path, out_dir: str | Path, workspace: str | Path = ".") -> dict[str, Any]:
    """Evaluate several registered versions (e.g. RPO vs DPO baseline) plus the base in one table."""
    from reverso import registry as reg

    reg.setup(registry.experiment, workspace)
    models: dict[str, tuple[Path, Path | None]] = {"base": (Path(model_dir), None)}
    for version in versions:
        found = reg.client().get_model_version(registry.model_name, version)
        label = f"v{version} ({(found.tags or {}).get('pairs', '?')})"
        models[label] = (Path(model_dir), reg.download_adapter(registry.model_name, version))
    suites = build_suites(params, seed_dir)
    scores: dict[str, Scores] = {}
    results, _, _ = evaluate_models(models, suites, params, make_eval_judge(params.judge), scores)
    results["suite_sizes"] = {name: len(items) for name, items in suites.items()}
    report = confidence_report(scores, params)
    results.update(ci=report["ci"], bootstrap=report["bootstrap"], power=report["power"])
    out_dir = Path(out_dir)
    write_json(out_dir / "compare.json", results)
    plot_per_constraint(results, list(models), out_dir / "compare_per_constraint.png")
    write_report(results, list(models), out_dir / "compare.md", "compare_per_constraint.png")
    return results
