"""The replication study: arm definitions, paired bootstrap report, and the plumbing end to end (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverso.config import ConfigError, load_params
from reverso.study import arm_train_params
from reverso.study.report import build_report, render_markdown


def test_arms_differ_only_in_pairs_and_margin() -> None:
    params = load_params(Path("/nonexistent.yaml"), ["train.gamma=0.05", "train.seed=42"])
    dpo, rpo, ablation = (arm_train_params(params, arm, 7) for arm in ("dpo", "rpo", "rpo_no_margin"))
    assert (dpo.pair_set, dpo.margin_gamma) == ("dpo", 0.0)  # plain DPO: count-based pairs, no margin
    assert (rpo.pair_set, rpo.margin_gamma) == ("rpo", 0.05)
    assert (ablation.pair_set, ablation.margin_gamma) == ("rpo", 0.0)
    assert {dpo.seed, rpo.seed, ablation.seed} == {7}
    assert dpo.learning_rate == rpo.learning_rate == ablation.learning_rate
    with pytest.raises(ValueError, match="unknown study arm"):
        arm_train_params(params, "ppo", 1)


def test_arms_are_data_builder_loss_and_margin_without_code(tmp_path: Path) -> None:
    arms = ("{dpo_paper: {builder: dpo_paper}, rpo_sft: {builder: rpo, margin: released, loss: [sigmoid, "
            "{type: sft, weight: 0.2}]}, ipo_rpo: {builder: rpo, loss: ipo}, simpo_rpo: {builder: rpo, "
            "loss: [simpo], beta: 2.0}, one_way: {builder: rpo_one_way, margin: paper}}")
    params = load_params(tmp_path / "missing.yaml", [f"study.arms={arms}"])
    assert list(params.study.arms) == ["dpo_paper", "rpo_sft", "ipo_rpo", "simpo_rpo", "one_way"]
    sft = arm_train_params(params, "rpo_sft", 1)
    assert [(t.type, t.weight) for t in sft.loss] == [("sigmoid", 1.0), ("sft", 0.2)] and sft.margin_gamma > 0
    simpo = arm_train_params(params, "simpo_rpo", 2)
    assert simpo.reference_free and simpo.beta == 2.0 and simpo.arm == "simpo_rpo" and simpo.seed == 2
    assert arm_train_params(params, "ipo_rpo", 1).margin_mode == "none"
    assert arm_train_params(params, "one_way", 1).pair_set == "rpo_one_way"
    with pytest.raises(ConfigError, match="study.arms.bad.*one pairwise term"):  # checked at load, named
        load_params(tmp_path / "missing.yaml", ["study.arms={bad: {builder: rpo, margin: paper, loss: [sigmoid, ipo]}}"])
    with pytest.raises(ConfigError, match="unknown built-in arm"):
        load_params(tmp_path / "missing.yaml", ["study.arms=[dpo, ppo]"])
    assert list(load_params(tmp_path / "missing.yaml", ["study.arms=[dpo, rpo]"]).study.arms) == ["dpo", "rpo"]


def test_a_recipe_replaces_the_arm_list_as_a_whole(tmp_path: Path) -> None:
    from reverso.config import recipe_overrides

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("study:\n  arms:\n    rpo: {builder: rpo, margin: released}\n  seeds: [1]\n")
    params = load_params(Path("params.yaml"), recipe_overrides(recipe))
    assert list(params.study.arms) == ["rpo"]


def test_study_params_refuse_repeats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="study.seeds"):
        load_params(tmp_path / "missing.yaml", ["study.seeds=[1, 1]"])


def _record(name: str, passes: list[bool], digest: str = "d") -> dict:
    """An IFEval-style evaluation: one single-turn session per prompt, one constraint each."""
    sessions = [[{"ids": ["punctuation:no_comma"], "strict": [ok], "loose": [ok]}] for ok in passes]
    return {"model": name, "suites_digest": digest, "suite_sizes": {"ifeval": len(passes)},
            "scores": {"ifeval": sessions}, "wall_s": 1.0}


def test_report_pairs_differences_on_the_same_prompts() -> None:
    n = 40
    evals = {"base": _record("base", [False] * n)}
    for seed in (1, 2):
        evals[f"rpo-{seed}"] = _record(f"rpo-{seed}", [True] * n)  # RPO passes every prompt
        evals[f"dpo-{seed}"] = _record(f"dpo-{seed}", [i % 2 == 0 for i in range(n)])  # DPO half of them
    report = build_report(evals, {}, resamples=300, confidence=0.95)
    summary = report["summary"]["ifeval"]
    assert summary["rpo"]["mean"] == 100 and summary["base"]["mean"] == 0 and summary["dpo"]["mean"] == 50
    assert summary["rpo"]["seeds"] == [100, 100] and summary["rpo"]["n"] == n
    rpo_base = report["differences"]["rpo_minus_base"]["ifeval"]
    assert rpo_base == {"mean": 100, "ci_low": 100, "ci_high": 100, "n": n}
    rpo_dpo = report["differences"]["rpo_minus_dpo"]["ifeval"]
    assert rpo_dpo["mean"] == 50 and 30 < rpo_dpo["ci_low"] < 50 < rpo_dpo["ci_high"] < 70
    assert "rpo_minus_rpo_no_margin" not in report["differences"]  # only comparisons whose arms ran
    assert "dpo_minus_base" in report["differences"]  # every arm against the base model
    table = render_markdown(report)
    assert "| rpo |" in table and "rpo_minus_dpo" in table and "n=40" in table


def test_report_refuses_evaluations_on_different_suites() -> None:
    evals = {"base": _record("base", [True, False]), "rpo-1": _record("rpo-1", [True, True], digest="other")}
    with pytest.raises(ValueError, match="different suites"):
        build_report(evals, {}, resamples=100, confidence=0.95)


SMOKE = [
    "model.source=random-init", "collect.sessions=10", "collect.turns=2", "collect.system_constraints=6",
    "collect.samples_per_turn=4", "collect.sampler.max_new_tokens=24", "reverse.max_quarantine_fraction=0.5",
    "pairs.g_min=1", "pairs.allow_truncated=true", "pairs.max_length=256", "train.max_length=256",
    "train.max_steps=2",
    "evaluate.suites.ifeval=3", "evaluate.suites.multi_if=2", "evaluate.suites.sysbench=1",
    "evaluate.sysbench_turns=2", "evaluate.max_new_tokens=8",
    "study.arms=[dpo, rpo]", "study.seeds=[1, 2]", "study.bootstrap=100",
]


@pytest.mark.slow
def test_study_smoke_end_to_end(tmp_path: Path) -> None:
    from test_e2e import copied_workspace, run

    workspace, env, bin_dir = copied_workspace(tmp_path)
    output = run([str(bin_dir / "reverso"), "study", *sum((["-S", o] for o in SMOKE), [])], workspace, env)
    assert "rpo_minus_dpo" in output

    study = json.loads((workspace / "metrics/study.json").read_text())
    models = {"base", *(f"{a}-{s}" for a in ("dpo", "rpo") for s in (1, 2))}
    assert set(study["arms"]) == models
    assert set(study["summary"]) == {"ifeval", "multi_if", "sysbench"}
    assert "rpo_minus_rpo_no_margin" not in study["differences"]  # that arm was not run
    for key in ("rpo_minus_dpo", "rpo_minus_base", "dpo_minus_base"):
        assert set(study["differences"][key]) == {"ifeval", "multi_if", "sysbench"}
        for entry in study["differences"][key].values():
            assert set(entry) == {"mean", "ci_low", "ci_high", "n"} and entry["ci_low"] <= entry["ci_high"]
    assert study["wall_s"] > 0 and study["params"]["study"]["seeds"] == [1, 2]
    assert (workspace / "reports/study/study_per_constraint.png").exists()
    trained = {p.stem: json.loads(p.read_text()) for p in (workspace / "reports/study/train").glob("*.json")}
    assert {(t["arm"], t["seed"]) for t in trained.values()} == {(a, s) for a in ("dpo", "rpo") for s in (1, 2)}

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["reverso"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("reverso.stage") == "study"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 4  # one child run per arm x seed
    version = mlflow.MlflowClient().get_model_version_by_alias("reverso-policy", "challenger")
    assert version.tags["promotion.decision"] in {"promoted", "rejected"} and version.tags["study.model"] == "rpo-1"

    again = run([str(bin_dir / "reverso"), "study"], workspace, env)  # a rerun skips every finished item
    assert "study-train@rpo-2: skipped (already finished)" in again
    assert "Running stage" not in again
