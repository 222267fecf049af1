"""evaluate: a held-out multi-constraint suite, base vs policy, identical greedy decoding.

Metrics follow IFEval's definitions: prompt-level (every constraint of a prompt passed) and
instruction-level (share of constraints passed), each strict and loose.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.collect.samplers import GenerationSettings, HFSampler
from reverso.collect.sessions import build_sessions, load_seed
from reverso.config import EvaluateParams, RegistryParams
from reverso.contracts import Session
from reverso.io import write_json, write_jsonl
from reverso.prompts import as_dicts, session_constraints, turn_messages

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


def build_suite(params: EvaluateParams, seed_dir: str | Path) -> list[Session]:
    """Single-turn prompts from the corpus' eval portion with 1..k constraints each."""
    corpus = load_seed(seed_dir)
    sizes = list(range(params.min_constraints, max(params.min_constraints, params.max_constraints) + 1))
    suite: list[Session] = []
    for position, size in enumerate(sizes):
        count = params.prompts // len(sizes) + (1 if position < params.prompts % len(sizes) else 0)
        if count:
            suite += build_sessions(corpus, "eval", count, params.seed + size, turns=1, system_constraints=size,
                                    turn_constraints=0, cumulative=False, prefix=f"eval-k{size}-")
    return suite


def score(suite: list[Session], texts: list[str]) -> dict[str, Any]:
    """IFEval-style accuracies plus per-constraint-type pass rates (strict)."""
    prompt_strict = prompt_loose = 0
    inst_strict = inst_loose = inst_total = 0
    per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for session, text in zip(suite, texts, strict=True):
        active = session_constraints(session, 0)
        context = engine.CheckContext(prompt=session.turns[0].user)
        strict = [v.passed for v in engine.check_all(active, text, context)]
        loose = engine.check_all_loose(active, text, context)
        prompt_strict += all(strict)
        prompt_loose += all(loose)
        inst_strict, inst_loose, inst_total = inst_strict + sum(strict), inst_loose + sum(loose), inst_total + len(strict)
        for constraint, ok in zip(active, strict, strict=True):
            per_type[constraint.id][0] += ok
            per_type[constraint.id][1] += 1
    n = max(len(suite), 1)
    return {
        "prompt_strict": prompt_strict / n, "prompt_loose": prompt_loose / n,
        "instruction_strict": inst_strict / max(inst_total, 1), "instruction_loose": inst_loose / max(inst_total, 1),
        "per_constraint": {cid: round(ok / total, 4) for cid, (ok, total) in sorted(per_type.items())},
    }


def generate(model_dir: Path, adapter: Path | None, suite: list[Session], params: EvaluateParams) -> list[str]:
    from reverso.prepare_model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, adapter)
    sampler = HFSampler(model, tokenizer, batch_size=params.batch_size)
    conversations = [as_dicts(turn_messages(s, 0, [])) for s in suite]
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=params.max_new_tokens, seed=params.seed)
    return [c[0].text for c in sampler.generate(conversations, 1, settings)]


def plot_per_constraint(results: dict[str, dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sorted(set(results["base"]["per_constraint"]) | set(results["policy"]["per_constraint"]))
    fig, axis = plt.subplots(figsize=(8, 0.35 * len(ids) + 1.5))
    for offset, name in ((-0.2, "base"), (0.2, "policy")):
        values = [results[name]["per_constraint"].get(cid, 0.0) for cid in ids]
        axis.barh([i + offset for i in range(len(ids))], values, height=0.4, label=name)
    axis.set_yticks(range(len(ids)), ids, fontsize=8)
    axis.set_xlabel("pass rate (strict)")
    axis.set_xlim(0, 1)
    axis.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def write_report(results: dict[str, Any], path: Path) -> None:
    lines = ["# Evaluation report", "", f"Suite: {results['suite_size']} held-out prompts.", "",
             "| metric | base | policy | delta |", "|---|---|---|---|"]
    for metric in METRICS:
        base, policy = results["base"][metric], results["policy"][metric]
        lines.append(f"| {metric} | {base:.3f} | {policy:.3f} | {policy - base:+.3f} |")
    lines += ["", "![per-constraint pass rates](eval_per_constraint.png)", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def evaluate(
    params: EvaluateParams,
    registry: RegistryParams,
    model_dir: str | Path,
    policy_dir: str | Path,
    seed_dir: str | Path,
    metrics_out: str | Path,
    plots_dir: str | Path,
    outputs_out: str | Path,
    workspace: str | Path = ".",
) -> dict[str, Any]:
    """Score base and policy on the suite; write metrics, plots, report; log to the training run."""
    model_dir, policy_dir, plots_dir = Path(model_dir), Path(policy_dir), Path(plots_dir)
    suite = build_suite(params, seed_dir)
    texts = {"base": generate(model_dir, None, suite, params), "policy": generate(model_dir, policy_dir, suite, params)}
    results: dict[str, Any] = {name: score(suite, texts[name]) for name in texts}
    results["suite_size"] = len(suite)
    results["primary_metric"] = params.primary_metric
    results["delta"] = {m: results["policy"][m] - results["base"][m] for m in METRICS}
    write_json(metrics_out, results)
    write_jsonl(outputs_out, [{"session_id": s.session_id, "constraints": [c.spec() for c in session_constraints(s, 0)],
                               "prompt": s.turns[0].user, "base": b, "policy": p}
                              for s, b, p in zip(suite, texts["base"], texts["policy"], strict=True)])
    plot_per_constraint(results, plots_dir / "eval_per_constraint.png")
    write_report(results, plots_dir / "eval_report.md")
    _log_to_mlflow(results, registry, policy_dir, plots_dir, workspace)
    return results


def _log_to_mlflow(results: dict[str, Any], registry: RegistryParams, policy_dir: Path, plots_dir: Path,
                   workspace: str | Path) -> None:
    import mlflow

    from reverso import registry as reg
    from reverso.train import TRAIN_INFO

    info = json.loads((policy_dir / TRAIN_INFO).read_text())
    reg.setup(registry.experiment, workspace)
    flat = {f"eval_{name}_{m}": results[name][m] for name in ("base", "policy") for m in METRICS}
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_metrics(flat)
        mlflow.log_artifact(str(plots_dir / "eval_per_constraint.png"), artifact_path="eval")
        mlflow.log_artifact(str(plots_dir / "eval_report.md"), artifact_path="eval")
    reg.tag_version(info["model_name"], info["version"], {f"eval.{k}": round(v, 4) for k, v in flat.items()})
