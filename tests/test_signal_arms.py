"""The arms a small model learns from, as data: SFT builders, finish-your-answer pairs, budgets, lineage."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reverso import constraints as engine
from reverso.config import ArmSpec, ReverseParams, TrainParams, with_arm
from reverso.study.config import StudyParams
from reverso.contracts import Response, SamplerInfo
from reverso.pairs import finished_only
from reverso.pairs.builders import Sample, hindsight_examples, rpo_pairs, verified_examples
from reverso.pairs.validate import GateSettings, reverify, reverify_example, validate_pair_sets
from reverso.reverse import judge_response
from support.pairs import TEXTS, make_session

REPLY_ENDS = "reverso:reply_ends"


def judged(texts: list[str], cut: set[int] = frozenset()) -> tuple[object, list[Sample]]:
    """TEXTS judged against the session's rules; indices in ``cut`` were cut off at the token cap."""
    session = make_session()
    samples = []
    for index, text in enumerate(texts):
        response = Response(session_id="s1", turn=0, sample_idx=index, history=[], text=text, model="m",
                            sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0),
                            finish_reason="length" if index in cut else "stop", prompt_tokens=5, completion_tokens=5)
        verdict, reason = judge_response(session, response, ReverseParams())
        assert verdict is not None, reason
        samples.append(Sample(response, verdict))
    return session, samples


def test_reply_ends_is_an_implicit_rule_the_engine_checks_from_the_finish() -> None:
    rule = engine.reply_ends()
    assert engine.is_implicit(rule) and not engine.is_reversible(rule)
    assert engine.check(rule, "text", engine.CheckContext(finished=True)).passed
    assert not engine.check(rule, "text", engine.CheckContext(finished=False)).passed
    assert REPLY_ENDS not in engine.sampleable_types()
    assert engine.render_instructions([rule], "seed") == ""  # never said in a prompt


def test_hindsight_examples_are_every_finished_reply_under_its_reversed_instruction() -> None:
    session, samples = judged(TEXTS, cut={4})
    finished, _ = finished_only({("s1", 0): samples}, allow_truncated=False)  # what the stage hands the builders
    examples = hindsight_examples(session, finished[("s1", 0)])
    assert [e.completion[0].content for e in examples] == TEXTS[:4]  # the cut reply is left out
    for example in examples:
        assert reverify_example(example) == []  # the reply passes every rule of its own prompt
        assert example.builder == "hindsight_sft"
    # the reversed rule list reached the prompt: two replies that differ on rules see different prompts
    assert examples[0].prompt[0].content != examples[1].prompt[0].content


def test_verified_examples_pass_the_original_instruction() -> None:
    passing = "<<Title>> a river. Bye."  # passes all five original rules
    session, samples = judged([*TEXTS, passing])
    examples = verified_examples(session, samples)
    assert [e.completion[0].content for e in examples] == [passing]
    assert examples[0].prompt == make_original_prompt(session)
    session, samples = judged([passing], cut={0})
    finished, left_out = finished_only({("s1", 0): samples}, allow_truncated=False)
    assert verified_examples(session, finished[("s1", 0)]) == [] and left_out == 1  # cut: never an SFT target


def make_original_prompt(session):  # noqa: ANN001, ANN201 - a small test helper
    from reverso.prompts import turn_messages

    return turn_messages(session, 0, [])


def test_finish_pairs_only_ever_reject_a_cut_reply_and_count_the_rule_in_g() -> None:
    # TEXTS[0] and TEXTS[3] differ on 2 rules: not a pair at g_min 3 -- unless TEXTS[3] was cut
    session, samples = judged([TEXTS[0], TEXTS[3]], cut={1})
    assert rpo_pairs(session, samples, g_min=3) == []
    pairs = rpo_pairs(session, samples, g_min=3, finish=True)
    assert len(pairs) == 1  # one direction only: the cut reply is never chosen
    pair = pairs[0]
    assert pair.chosen[0].content == TEXTS[0] and pair.rejected_cut and pair.margin == 3
    assert pair.builder == "rpo_finish"
    assert REPLY_ENDS in [c.id for c in pair.constraints]
    chosen_fails, rejected_fails = reverify(pair)
    assert chosen_fails == [] and len(rejected_fails) == 3 and REPLY_ENDS in rejected_fails
    assert "length limit" not in pair.prompt[0].content  # the implicit rule is not rendered
    # two finished replies: the rule separates nothing, the pairs are rpo's (with the rule listed)
    session, samples = judged(TEXTS)
    finish = rpo_pairs(session, samples, g_min=3, finish=True)
    assert [(p.chosen[0].content, p.rejected[0].content, p.margin) for p in finish] == [
        (p.chosen[0].content, p.rejected[0].content, p.margin) for p in rpo_pairs(session, samples, g_min=3)]


def test_the_gate_accepts_finish_pairs_and_examples(tmp_path) -> None:
    session, samples = judged(TEXTS, cut={1})
    pairs = rpo_pairs(session, samples, g_min=3, finish=True)
    examples = hindsight_examples(session, samples)
    assert any(p.rejected_cut for p in pairs)
    summaries = validate_pair_sets({"rpo_finish": (pairs, ["train"] * len(pairs), None),
                                    "hindsight_sft": (examples, ["train"] * len(examples), None)},
                                   GateSettings(g_min=3), tmp_path)
    assert all(s["success"] for s in summaries.values())
    assert summaries["hindsight_sft"]["rows"] == len(examples) == len(TEXTS)


def test_arms_set_budget_lora_and_pairs_per_step_as_data() -> None:
    train = TrainParams(pairs_per_step=16)
    spec = ArmSpec(builder="hindsight_sft", loss=["sft"], budget=1000, pairs_per_step=4, lora=False,
                   learning_rate=1e-5)
    arm = with_arm(train, "hsft_full_b1000", spec)
    assert arm.sft_only and arm.max_steps == 250 and arm.pairs_per_step == 4
    assert not arm.lora.enabled and arm.lora.r == train.lora.r and arm.learning_rate == 1e-5
    assert arm.margin_gamma == 0.0  # no pair, no g
    assert with_arm(train, "rpo_b320", ArmSpec(builder="rpo", margin="released", budget=320)).max_steps == 20


def test_the_loss_matches_the_builder() -> None:
    TrainParams(builder="hindsight_sft", loss=["sft"], margin_mode="none")
    with pytest.raises(ValidationError, match="examples .* its loss is \\[sft\\] alone"):
        TrainParams(builder="verified_sft", loss=["sigmoid"])
    with pytest.raises(ValidationError, match="no pairwise term.*example builder"):
        TrainParams(builder="rpo", loss=["sft"])
    TrainParams(builder="rpo_finish", loss=["sigmoid", {"type": "sft", "weight": 1.0}])


def test_init_from_names_an_earlier_lora_arm() -> None:
    arms = {"hsft": {"builder": "hindsight_sft", "loss": ["sft"]},
            "then_rpo": {"builder": "rpo", "margin": "released", "init_from": "hsft"}}
    study = StudyParams(arms=dict(reversed(arms.items())), primary_comparison=["then_rpo", "base"])
    assert study.arms["then_rpo"].init_from == "hsft"
    assert study.train_order() == ["hsft", "then_rpo"]  # the source trains first, whatever the listing order
    with pytest.raises(ValidationError, match="name another arm"):
        StudyParams(arms={"then_rpo": arms["then_rpo"]}, primary_comparison=["then_rpo", "base"])
    loop = {"a": {**arms["then_rpo"], "init_from": "b"}, "b": {**arms["then_rpo"], "init_from": "a"}}
    with pytest.raises(ValidationError, match="cycle"):
        StudyParams(arms=loop, primary_comparison=["a", "b"])
    full = {"hsft": {**arms["hsft"], "lora": False}, "then_rpo": arms["then_rpo"]}
    with pytest.raises(ValidationError, match="only start from another arm's LoRA adapter"):
        StudyParams(arms=full, primary_comparison=["then_rpo", "base"])


@pytest.mark.slow
def test_an_sft_arm_trains_on_examples_alone_and_reports_rule_reading(tiny_model_dir, tmp_path, isolated_mlflow) -> None:
    """hindsight_sft trains with TRL's SFTTrainer (no rejected side), at a budget of example-passes, and the
    couple-margin diagnostic is measured on the held-out RPO pairs of the same data."""
    import json
    import os

    import mlflow

    from reverso.config import RegistryParams
    from reverso.train import train

    session, samples = judged(TEXTS)
    examples = hindsight_examples(session, samples)
    pairs = rpo_pairs(session, samples, g_min=1)
    root = tmp_path / "data/pairs"
    for folder, rows in (("hindsight_sft", examples), ("rpo", pairs)):
        for split in ("train", "eval"):
            path = root / folder / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    params = with_arm(TrainParams(max_length=128, batch_size=1, learning_rate=5e-3, held_out_pairs=4),
                      "hsft_b6", ArmSpec(builder="hindsight_sft", loss=["sft"], budget=6, pairs_per_step=2))
    try:
        metrics = train(params, RegistryParams(), tiny_model_dir, root, tmp_path / "models/policy",
                        tmp_path / "metrics/train.json", tmp_path / "plots", tmp_path, register=False)
    finally:
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    assert metrics["steps"] == 3 and metrics["train_pairs"] == len(examples)
    assert metrics["regime"]["builder"] == "hindsight_sft" and metrics["regime"]["pairs_per_step"] == 2
    assert "cpu_flags" in metrics["machine"] and metrics["machine"]["versions"]["torch"]  # which CPU it trained on
    assert (tmp_path / "models/policy/adapter_model.safetensors").exists()
    assert metrics["eval_pairs"] == 4  # held_out_pairs caps the held-out examples scored per evaluation too
    after = metrics["rule_reading"]["after"]
    assert after["pairs"] == 4 and after["couples"] == 2  # held_out_pairs: two whole couples
    assert after["couple_margin_sum"] != pytest.approx(0.0, abs=1e-7)  # the adapter moved the couples
    assert json.loads((tmp_path / "metrics/train.json").read_text())["loss"] == "sft"
