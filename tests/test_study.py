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
    assert rpo_base == {"mean": 100, "ci_low": 100, "ci_high": 100, "n": n, "clusters": n, "replicates": 2}
    rpo_dpo = report["differences"]["rpo_minus_dpo"]["ifeval"]
    assert rpo_dpo["mean"] == 50 and 30 < rpo_dpo["ci_low"] < 50 < rpo_dpo["ci_high"] < 70
    assert "rpo_minus_rpo_no_margin" not in report["differences"]  # only comparisons whose arms ran
    assert "dpo_minus_base" in report["differences"]  # every arm against the base model
    table = render_markdown(report)
    assert "| rpo |" in table and "rpo_minus_dpo" in table and "n=40" in table


def test_replicate_spread_and_query_clusters_widen_the_interval() -> None:
    """The hierarchical bootstrap: replicates that disagree widen an arm's CI beyond what prompts alone give,
    and prompts built on one query move together (fewer independent units -> a wider CI)."""
    n = 40
    agree = {"base": _record("base", [False] * n), "rpo-1": _record("rpo-1", [i % 2 == 0 for i in range(n)]),
             "rpo-2": _record("rpo-2", [i % 2 == 0 for i in range(n)])}
    disagree = {**agree, "rpo-1": _record("rpo-1", [True] * n), "rpo-2": _record("rpo-2", [False] * n)}
    width = {}
    for label, evals in (("agree", agree), ("disagree", disagree)):
        entry = build_report(evals, {}, resamples=400, confidence=0.95, primary=("rpo", "base"),
                             primary_suite="ifeval")["summary"]["ifeval"]["rpo"]
        assert entry["mean"] == 50 and entry["replicates"] == 2
        width[label] = entry["ci_high"] - entry["ci_low"]
    assert width["disagree"] > 2 * width["agree"]  # 0 or 100 per replicate: the spread is in the CI
    clustered = {name: {**r, "clusters": {"ifeval": [f"q{i // 2}" for i in range(n)]}} for name, r in agree.items()}
    for name in clustered:  # two prompts per query, both pass or both fail
        passes = [(i // 2) % 2 == 0 for i in range(n)] if name != "base" else [False] * n
        clustered[name]["scores"] = _record(name, passes)["scores"]
    entry = build_report(clustered, {}, resamples=400, confidence=0.95, primary=("rpo", "base"),
                         primary_suite="ifeval")["summary"]["ifeval"]["rpo"]
    assert entry["clusters"] == n // 2 and entry["ci_high"] - entry["ci_low"] > 1.2 * width["agree"]


def test_the_primary_comparison_and_the_noise_floor_lead_the_report() -> None:
    n = 20
    evals = {"base": _record("base", [i % 4 == 0 for i in range(n)]),
             "aa": _record("aa", [i % 4 == 1 for i in range(n)]),
             "rpo-1": _record("rpo-1", [True] * n), "dpo-1": _record("dpo-1", [i % 2 == 0 for i in range(n)])}
    for name, record in evals.items():
        record["outputs"] = {"ifeval": [[f"answer {i}" if name != "aa" or i < 15 else "other"] for i in range(n)]}
        record["truncation"] = {"all": {"cut": 0.1, "answers": n, "mean_tokens": 50.0}}
    evals["aa"]["perturbation"] = {"scale": 1e-6, "weights_changed": 10, "weights": 10}
    report = build_report(evals, {}, resamples=200, confidence=0.95, primary=("rpo", "dpo"), primary_suite="ifeval")
    primary = report["primary"]
    assert primary["comparison"] == "rpo_minus_dpo" and primary["mean"] == 50 and primary["halfwidth"] > 0
    assert report["noise_floor"]["answers"] == {"differ": 5, "turns": n}
    assert report["noise_floor"]["difference"]["ifeval"]["mean"] == 0  # 5 pass each: same score, other prompts
    assert "aa" not in report["per_constraint"] and report["truncation"]["rpo-1"]["cut"] == 0.1
    text = render_markdown(report)
    assert text.startswith("**Primary comparison (named before the run): rpo_minus_dpo on ifeval: +50.0")
    assert "A/A noise floor" in text and "differ on 5/20 turns" in text and "**rpo_minus_dpo (primary)**" in text


def test_the_aa_model_moves_every_fp32_weight_by_the_relative_scale(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from reverso.study.replicate import perturbed_copy

    record = perturbed_copy(tiny_model_dir, tmp_path / "aa", 1e-6, seed=7)
    before = load_file(str(next(tiny_model_dir.glob("*.safetensors"))))
    after = load_file(str(next((tmp_path / "aa").glob("*.safetensors"))))
    assert set(before) == set(after) and record["weights"] == sum(t.numel() for t in before.values())
    assert record["weights_changed"] > 0.9 * record["weights"]  # fp32: a relative 1e-6 survives
    for name, tensor in before.items():
        relative = ((after[name] - tensor).abs() / tensor.abs().clamp_min(1e-30))
        assert float(relative.max()) < 1e-4 and float(relative.mean()) < 3e-6
    assert (tmp_path / "aa/config.json").read_text() == (tiny_model_dir / "config.json").read_text()
    assert perturbed_copy(tiny_model_dir, tmp_path / "same", 0.0, seed=7)["weights_changed"] == 0
    same = load_file(str(next((tmp_path / "same").glob("*.safetensors"))))
    assert all(torch.equal(same[name], tensor) for name, tensor in before.items())


def test_primary_comparison_must_name_arms_that_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="primary_comparison"):
        load_params(tmp_path / "missing.yaml", ["study.arms=[dpo, rpo]", "study.primary_comparison=[rpo, ppo]"])
    assert load_params(tmp_path / "missing.yaml", ["study.arms=[dpo, rpo]"]).study.primary() == ("rpo", "dpo")
    assert load_params(tmp_path / "missing.yaml", ["study.arms=[rpo]"]).study.primary() == ("rpo", "base")


def test_report_refuses_evaluations_on_different_suites() -> None:
    evals = {"base": _record("base", [True, False]), "rpo-1": _record("rpo-1", [True, True], digest="other")}
    with pytest.raises(ValueError, match="different suites"):
        build_report(evals, {}, resamples=100, confidence=0.95)


@pytest.mark.slow
def test_study_smoke_end_to_end(tmp_path: Path) -> None:
    from support.workspace import STUDY_SMOKE, copied_workspace, run

    workspace, env, bin_dir = copied_workspace(tmp_path)
    output = run([str(bin_dir / "reverso"), "study", *sum((["-S", o] for o in STUDY_SMOKE), [])], workspace, env)
    assert "rpo_minus_dpo" in output

    study = json.loads((workspace / "metrics/study.json").read_text())
    models = {"base", "aa", *(f"{a}-{s}" for a in ("dpo", "rpo") for s in (1, 2))}
    assert set(study["arms"]) == models
    assert set(study["summary"]) == {"ifeval", "multi_if", "sysbench"}
    assert "rpo_minus_rpo_no_margin" not in study["differences"]  # that arm was not run
    for key in ("rpo_minus_dpo", "rpo_minus_base", "dpo_minus_base"):
        assert set(study["differences"][key]) == {"ifeval", "multi_if", "sysbench"}
        for entry in study["differences"][key].values():
            assert set(entry) == {"mean", "ci_low", "ci_high", "n", "clusters", "replicates"}
            assert entry["ci_low"] <= entry["ci_high"] and entry["replicates"] == 2
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
    assert version.tags["study.primary"] == "rpo_minus_dpo on multi_if"
    assert study["promotion"]["replicate_versions"][0] == str(version.version)
    assert len(study["promotion"]["replicate_versions"]) == 2  # every replicate registered, evidence on each
    draws = {t["data"]["collect_seed"] for t in trained.values()}
    assert len(draws) == 2  # each replicate trained on its own data draw
    assert study["noise_floor"]["answers"]["turns"] > 0 and study["primary"]["comparison"] == "rpo_minus_dpo"
    for arm in ("dpo", "rpo"):  # each arm's first replicate, published as an fp16 adapter with its README line
        published = workspace / "models/study" / arm
        assert (published / "adapter_config.json").exists() and study["published"][arm]["model"] == f"{arm}-1"
        from safetensors.torch import load_file

        assert {str(t.dtype) for t in load_file(str(published / "adapter_model.safetensors")).values()} == {"torch.float16"}
    assert "| rpo | rpo-1 |" in (workspace / "models/study/README.md").read_text()

    decided_again = run([str(bin_dir / "reverso"), "study", "report"], workspace, env)
    assert "promotion: rejected" in decided_again  # one test draw decides one promotion, never twice
    again_json = json.loads((workspace / "metrics/study.json").read_text())
    assert any("already decided" in r for r in again_json["promotion"]["reasons"])

    # a new machine: the packed study, unpacked into a fresh copy at the same path, reruns no finished item
    # (the same as a rerun in place, which the resume below also is)
    import shutil

    from support.workspace import copy_repo

    archive = tmp_path / "progress.tar.gz"
    run([str(bin_dir / "reverso"), "study", "pack", "--out", str(archive)], workspace, env)
    shutil.rmtree(workspace)
    workspace.mkdir()
    copy_repo(workspace)
    run([str(bin_dir / "reverso"), "study", "unpack", str(archive)], workspace, env)
    resumed = run([str(bin_dir / "reverso"), "study"], workspace, env)
    for item in ("study-collect@2", "study-pairs@2", "study-train@rpo-2", "study-evaluate-aa", "study-evaluate@dpo-1"):
        assert f"{item}: skipped (already finished)" in resumed
    for stage in ("collect", "pairs", "train", "evaluate"):  # no data, training or evaluation item reruns
        assert f"Running stage 'study/dvc.yaml:study-{stage}" not in resumed
