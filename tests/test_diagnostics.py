"""The rule-reading diagnostic: couple margins cancel for a model that ignores the rules, and train logs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.pairs import make_samples
from support.training import TRL_EXACT

from reverso.pairs.builders import couple_key, rpo_pairs
from reverso.pairs.validate import reverify
from reverso.train.diagnostics import flat_metrics, held_out_facts, rule_reading


def couple_pairs():
    session, samples = make_samples()
    return rpo_pairs(session, samples, 1)


def test_facts_find_every_mirror_couple_and_the_rules_that_separate_each_pair() -> None:
    pairs = couple_pairs()
    facts = held_out_facts(pairs)
    assert len(facts.couples) == len(pairs) // 2 and len(pairs) % 2 == 0
    for a, b in facts.couples:
        assert couple_key(pairs[a]) == couple_key(pairs[b]) and pairs[a].chosen == pairs[b].rejected
    for index, pair in enumerate(pairs):
        chosen_fails, rejected_fails = reverify(pair)
        assert chosen_fails == [] and sorted(rejected_fails) == facts.rule_types[index]
        assert len(facts.rule_types[index]) == pair.margin  # RPO: the g differing rules


def test_a_model_that_ignores_the_rules_sums_to_zero_and_one_that_reads_them_is_positive() -> None:
    pairs = couple_pairs()
    facts = held_out_facts(pairs)
    # ignores the rules: prefers the same reply under both prompts (Delta_A = -Delta_B)
    ignoring = {}
    for a, b in facts.couples:
        ignoring[a], ignoring[b] = 2.0, -2.0
    found = rule_reading(facts, ignoring, beta=0.1)
    assert found["couple_margin_sum"] == pytest.approx(0.0) and found["couples_reading"] == 0.0
    # reads the rules: prefers each prompt's chosen reply
    reading = {i: 0.5 for pair in facts.couples for i in pair}
    found = rule_reading(facts, reading, beta=0.1)
    assert found["couple_margin_sum"] == pytest.approx(0.1) and found["couples_reading"] == 1.0
    assert found["couples"] == len(facts.couples)
    accuracy = found["type_accuracy"]
    assert accuracy and all(v["accuracy"] == 1.0 for v in accuracy.values())
    assert sum(v["pairs"] for v in accuracy.values()) == sum(len(t) for t in facts.rule_types.values())
    flat = flat_metrics(found)
    assert flat["rule_reading/couple_margin_sum"] == pytest.approx(0.1)
    assert all(k.startswith(("rule_reading/", "type_accuracy/")) for k in flat)


@pytest.mark.slow
def test_training_logs_the_diagnostic_per_evaluation(tiny_model_dir: Path, tmp_path: Path, isolated_mlflow: str) -> None:
    import mlflow

    from reverso.config import RegistryParams, TrainParams
    from reverso.train import train

    pairs = couple_pairs()
    for split in ("train", "eval"):
        path = tmp_path / "data/pairs/rpo" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    # the exact path (fp32, TRL's forward): policy == reference holds to 1e-6 only there, not under bf16 autocast
    params = TrainParams(**TRL_EXACT, max_length=128, epochs=2, batch_size=2, pairs_per_step=4, learning_rate=5e-3)
    try:
        metrics = train(params, RegistryParams(), tiny_model_dir, tmp_path / "data/pairs", tmp_path / "models/policy",
                        tmp_path / "metrics/train.json", tmp_path / "plots", tmp_path, register=False)
    finally:  # train() makes this workspace's experiment the process's active one: leave no trace for later tests
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    reading = metrics["rule_reading"]
    assert reading["before"]["couple_margin_sum"] == pytest.approx(0.0, abs=1e-6)  # policy == reference
    assert reading["after"]["couple_margin_sum"] != pytest.approx(0.0, abs=1e-6)
    assert len(reading["history"]) == 3 and reading["after"]["type_accuracy"]  # before, and after each epoch
    regime = metrics["regime"]
    assert regime["pairs_per_step"] == 4 and regime["gradient_accumulation_steps"] == 2
    assert regime["optimizer_steps"] == metrics["steps"] == 2 * -(-len(pairs) // 4)
    assert (regime["lr_scheduler"], regime["warmup_ratio"]) == ("cosine", 0.1)
    curves = json.loads((tmp_path / "plots/train_curves.json").read_text())["curves"]
    assert any("eval_rule_reading_couple_margin_sum" in row for row in curves)
    mlflow.set_tracking_uri(isolated_mlflow)  # where train() logged (MLFLOW_TRACKING_URI, set by the fixture)
    history = mlflow.MlflowClient().get_metric_history(metrics["run_id"], "eval_rule_reading_couple_margin_sum")
    assert len(history) == 3
