"""The self-improving loop's campaign state and round stages. Each round samples with the current
``@champion``, trains a challenger from the champion's adapter on fresh RPO pairs, and promotes it only
on evidence (iterative on-policy RPO).

A campaign starts from whatever holds ``@champion`` when it begins (the base model when nothing does),
recorded once in ``improve/start.json``. Round k is a chain of DVC stage items (improve/dvc.yaml):

    champion@k   the round's starting champion: round k-1's decision (start.json for k = 1); its
                 adapter is downloaded from the registry into improve/round-k/champion/
    collect@k    fresh training sessions (corpus train split, collect.seed = improve.seed + k),
                 sampled with base + the champion's adapter
    reverse@k, pairs@k   the stages' own verbs on the round's files (the Great Expectations gate as always)
    train@k      continues training the champion's LoRA adapter (a fresh LoRA when there is none); the
                 DPO reference is the base model or the champion (improve.reference); registered as
                 @challenger with lineage tags (round, parent version, data digest, pair counts)
    evaluate@k   challenger vs base and vs champion on the validation pool (improve.validation_seed),
                 paired bootstrap CIs, as evaluate does
    promote@k    promote.py's gate for this version (compare-and-set on @champion) -> decision.json

Every version is a LoRA adapter on the same base (models/base), so evaluate's champion pairing,
``evaluate --compare`` and the pyfunc model work on any of them. A killed round resumes at the stage
it stopped in (finished items are skipped); a losing round leaves ``@champion`` untouched and the
next round starts from the same champion. ``final`` evaluates the last champion vs base on the test
draw (evaluate.seed) once; ``report`` (report.py) writes metrics/improve.json and the curve.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from reverso.config import Params
from reverso.errors import ReversoError
from reverso.io import write_json

ROOT = Path("improve")
START = ROOT / "start.json"
PLAN = ROOT / "rounds.yaml"  # the rounds improve/dvc.yaml iterates over (written by the flow)
FINAL = ROOT / "final" / "test.json"
BASE, SEED = Path("models/base"), Path("data/seed")
PARENT_MARKER = Path(".reverso/improve/parent_run.json")


class ImproveError(ReversoError, RuntimeError):
    """The campaign's recorded state and the registry disagree; the message says how to go on."""


@dataclass(frozen=True)
class RoundPaths:
    """Where round k's outputs live (relative to the workspace)."""

    k: int

    @property
    def root(self) -> Path:
        return ROOT / f"round-{self.k}"

    @property
    def champion(self) -> Path:
        return self.root / "champion"

    @property
    def champion_json(self) -> Path:
        return self.champion / "champion.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def decision(self) -> Path:
        return self.root / "decision.json"


def round_seed(params: Params, k: int) -> int:
    """collect.seed of round k: a new, recorded seed per round."""
    return params.improve.seed + k


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImproveError(f"{path}: cannot read ({exc}); run `reverso improve` to produce it") from None


def finished_rounds(workspace: Path) -> int:
    """Rounds 1..n that have a decision (contiguous from round 1)."""
    n = 0
    while (workspace / RoundPaths(n + 1).decision).exists():
        n += 1
    return n


def start_campaign(params: Params, workspace: Path, restart: bool = False) -> dict[str, Any]:
    """improve/start.json: the champion the campaign starts from, read from the registry once."""
    from reverso import registry as reg

    path = workspace / START
    if path.exists() and not restart:
        return _read(path)
    reg.setup(params.registry.experiment, workspace)
    champion = reg.version_str(reg.alias_version(params.registry.model_name, reg.CHAMPION))
    record = {"champion_version": champion, "model_name": params.registry.model_name,
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(path, record)
    return record


def round_plan(params: Params, target: int, workspace: Path) -> dict[str, Any]:
    """improve/rounds.yaml: rounds 1..max(target, finished) with each round's inputs for improve/dvc.yaml."""
    last = max(target, finished_rounds(workspace))
    rounds = {}
    for k in range(1, last + 1):
        prev = START if k == 1 else RoundPaths(k - 1).decision
        rounds[str(k)] = {"round": k, "prev": str(prev),
                          "min_delta": float(params.improve.min_delta.get(k, params.promote.min_delta))}
    return {"rounds": rounds, "last": str(RoundPaths(target).decision), "target": target}


def write_plan(workspace: Path, plan: dict[str, Any]) -> None:
    path = workspace / PLAN
    text = ("# Written by `reverso improve` (improve.rounds / one more round per scheduled run); read by\n"
            "# improve/dvc.yaml. Each round's items depend on the round before, so nothing reruns unchanged.\n"
            + yaml.safe_dump(plan, sort_keys=True))
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def resolve_champion(params: Params, k: int, workspace: Path) -> dict[str, Any]:
    """Stage champion@k: the round's starting champion and its adapter (downloaded from the registry)."""
    from reverso import registry as reg

    paths = RoundPaths(k)
    source = workspace / (START if k == 1 else RoundPaths(k - 1).decision)
    version = _read(source).get("champion_version" if k == 1 else "champion_after")
    target = workspace / paths.champion
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    digest = None
    if version is not None:
        reg.setup(params.registry.experiment, workspace)
        downloaded = reg.download_adapter(params.registry.model_name, str(version))
        shutil.copytree(downloaded, target / "adapter")
        digest = reg.file_md5(target / "adapter" / "adapter_model.safetensors")
    record = {"round": k, "version": version, "from": str(source.relative_to(workspace)), "adapter_md5": digest,
              "collect_seed": round_seed(params, k), "reference": params.improve.reference}
    write_json(target / "champion.json", record)
    return record


def champion_of(k: int, workspace: Path) -> tuple[str | None, Path | None]:
    """(version, adapter folder) of round k's starting champion; (None, None) for the base model."""
    paths = RoundPaths(k)
    version = _read(workspace / paths.champion_json).get("version")
    return (str(version), workspace / paths.champion / "adapter") if version is not None else (None, None)


def collect_round(params: Params, k: int, workspace: Path) -> dict[str, Any]:
    """Stage collect@k: fresh sessions from the train split, sampled with the champion."""
    from reverso.collect import PROGRESS_DIR, collect

    paths = RoundPaths(k)
    _, adapter = champion_of(k, workspace)
    section = params.collect.model_copy(update={"seed": round_seed(params, k)})
    return collect(section, workspace / BASE, workspace / SEED, workspace / paths.data / "sessions.jsonl",
                   workspace / paths.data / "responses.jsonl", workspace / paths.metrics / "collect.json",
                   progress_dir=workspace / PROGRESS_DIR, adapter=adapter)


def data_digest(k: int, workspace: Path) -> str:
    """What round k trained on: the responses it sampled and the pair files built from them."""
    from reverso.registry import file_md5

    paths = RoundPaths(k)
    files = [paths.data / "responses.jsonl", *sorted((paths.data / "pairs").rglob("*.jsonl"))]
    text = json.dumps([[str(f.relative_to(paths.root)), file_md5(workspace / f)] for f in files])
    return hashlib.md5(text.encode()).hexdigest()


def train_round(params: Params, k: int, workspace: Path) -> dict[str, Any]:
    """Stage train@k: continue the champion's adapter (or a fresh LoRA) on the round's pairs; lineage tags."""
    from reverso import registry as reg
    from reverso.train import StartFrom, train

    paths = RoundPaths(k)
    version, adapter = champion_of(k, workspace)
    start = StartFrom(adapter, params.improve.reference) if adapter is not None else None
    metrics = train(params.train, params.registry, workspace / BASE, workspace / paths.data / "pairs",
                    workspace / paths.adapter, workspace / paths.metrics / "train.json", workspace / paths.root / "plots",
                    workspace, register=True, run_name=f"improve-round-{k}", parent_run_id=parent_run(params, workspace),
                    start=start)
    pair_counts = _read(workspace / paths.metrics / "pairs.json").get(params.train.pair_set, {})
    tags = {"improve.round": k, "improve.parent_version": version or "base", "improve.data_digest": data_digest(k, workspace),
            "improve.pairs_train": pair_counts.get("train", 0), "improve.pairs_eval": pair_counts.get("eval", 0),
            "improve.collect_seed": round_seed(params, k), "improve.reference": params.improve.reference,
            "improve.start": "champion adapter" if start else "fresh LoRA on base",
            "improve.campaign": parent_run(params, workspace)}
    reg.tag_version(params.registry.model_name, str(metrics["version"]), tags)
    return {**metrics, "lineage": tags}


def evaluate_round(params: Params, k: int, workspace: Path) -> dict[str, Any]:
    """Stage evaluate@k: challenger vs base and vs the round's champion on the validation draw."""
    from reverso import registry as reg
    from reverso.evaluate import evaluate

    version, _ = champion_of(k, workspace)
    reg.setup(params.registry.experiment, workspace)
    current = reg.version_str(reg.alias_version(params.registry.model_name, reg.CHAMPION))
    if current != version:
        raise ImproveError(f"round {k} started from champion {_name(version)} but @{reg.CHAMPION} of "
                           f"{params.registry.model_name!r} is now {_name(current)} (moved outside this campaign): "
                           "start a new campaign with `reverso improve --restart`")
    section = params.evaluate.model_copy(update={"seed": params.improve.validation_seed, "with_champion": True})
    out = workspace / RoundPaths(k).eval_dir
    return evaluate(section, params.registry, workspace / BASE, workspace / RoundPaths(k).adapter, workspace / SEED,
                    out / "metrics.json", out, out / "outputs.jsonl", workspace, pool="validation")


def _name(version: str | None) -> str:
    return f"v{version}" if version is not None else "the base model"


@dataclass(frozen=True)
class RoundDecision:
    round: int
    challenger_version: str
    champion_before: str | None
    champion_after: str | None
    decision: str  # promoted | rejected
    reason: str
    metric: str
    min_delta: float
    vs_base: dict[str, Any] | None
    vs_champion: dict[str, Any] | None


def promote_round(params: Params, k: int, min_delta: float, workspace: Path) -> RoundDecision:
    """Stage promote@k: promote.py's gate for this round's version, compare-and-set on @champion."""
    from reverso import registry as reg
    from reverso.promote import promote
    from reverso.train import TRAIN_INFO

    paths = RoundPaths(k)
    version = str(_read(workspace / paths.adapter / TRAIN_INFO)["version"])
    before, _ = champion_of(k, workspace)
    name = params.registry.model_name
    reg.setup(params.registry.experiment, workspace)
    current = reg.version_str(reg.alias_version(name, reg.CHAMPION))
    gate = params.promote.model_copy(update={"min_delta": min_delta})
    if current == version and before != version:  # killed after the alias moved, before this file was written
        found = reg.client().get_model_version(name, version)
        result = RoundDecision(k, version, before, version, "promoted",
                               (found.tags or {}).get("promotion.reason", "promoted (resumed after an interruption)"),
                               gate.primary_metric, min_delta, None, None)
    else:
        decision = promote(gate, params.registry, workspace=workspace, version=version)
        result = RoundDecision(k, version, before, version if decision.promote else before,
                               "promoted" if decision.promote else "rejected", decision.reason, decision.metric,
                               min_delta, decision.vs_base, decision.vs_champion)
    reg.tag_version(name, version, {"improve.decision": result.decision})
    write_json(workspace / paths.decision, asdict(result))
    return result


def parent_run(params: Params, workspace: Path) -> str:
    """The campaign's MLflow parent run (one per improve/start.json); round trainings are its children."""
    from reverso import registry as reg

    reg.setup(params.registry.experiment, workspace)
    start = _read(workspace / START)
    key = hashlib.md5(json.dumps(start, sort_keys=True).encode()).hexdigest()[:12]
    return reg.keyed_parent_run(
        workspace / PARENT_MARKER, "campaign", key, f"improve-{key}",
        {"reverso.stage": "improve", "reverso.improve_campaign": key,
         "reverso.improve_start_champion": start.get("champion_version") or "base"},
        {"reference": params.improve.reference, "seed": params.improve.seed,
         "validation_seed": params.improve.validation_seed, "primary_metric": params.promote.primary_metric})


def final_test(params: Params, workspace: Path) -> dict[str, Any]:
    """Stage final: the last champion vs base on the test draw (evaluate.seed), once, paired CIs."""
    from reverso import registry as reg
    from reverso.evaluate import evaluate_models
    from reverso.evaluate.scoring import confidence_report, make_eval_judge
    from reverso.evaluate.suites import build_suites

    plan = yaml.safe_load((workspace / PLAN).read_text(encoding="utf-8"))
    last = _read(workspace / plan["last"])
    champion = last.get("champion_after")
    record: dict[str, Any] = {"split": "test", "seed": params.evaluate.seed, "champion_version": champion,
                              "after_round": last.get("round")}
    if champion is None:
        record["skipped"] = "no round promoted a challenger: the last champion is the base model"
    else:
        reg.setup(params.registry.experiment, workspace)
        adapter = reg.download_adapter(params.registry.model_name, str(champion))
        suites = build_suites(params.evaluate, workspace / SEED)
        scores: dict[str, Any] = {}
        started = time.perf_counter()
        results, _, _ = evaluate_models({"base": (workspace / BASE, None), "policy": (workspace / BASE, adapter)},
                                        suites, params.evaluate, make_eval_judge(params.evaluate.judge), scores)
        report = confidence_report(scores, params.evaluate)
        record.update(suite_sizes={k: len(v) for k, v in suites.items()}, metrics=results, ci=report["ci"],
                      paired=report["paired"].get("policy-base", {}), bootstrap=report["bootstrap"],
                      wall_s=round(time.perf_counter() - started, 1))
    write_json(workspace / FINAL, record)
    return record
