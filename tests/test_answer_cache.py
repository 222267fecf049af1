"""Reused greedy answers (evaluate/answer_cache.py): asked once per model, prompts, settings and CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reverso.config import EvaluateParams, SuiteSizes
from reverso.evaluate import answer_cache, evaluate_models
from reverso.evaluate.suites import build_suites

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def setup(tiny_model_dir: Path) -> tuple[EvaluateParams, dict]:
    params = EvaluateParams(suites=SuiteSizes(ifeval=2, multi_if=1, sysbench=0), max_new_tokens=4, backend="hf")
    return params, build_suites(params, REPO / "data/seed")


def test_a_second_evaluation_reuses_the_answers_and_scores_them_again(tiny_model_dir, setup, tmp_path, monkeypatch):
    params, suites = setup
    cache = tmp_path / answer_cache.CACHE_DIR
    finish: dict = {}
    first, outputs, timing = evaluate_models({"base": (tiny_model_dir, None)}, suites, params, finish=finish,
                                             workspace=tmp_path)
    assert timing["reused"] == [] and len(list(cache.glob("*.json"))) == 1

    import reverso.evaluate.run as evaluate

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached model was asked again")

    monkeypatch.setattr(evaluate, "make_sampler", no_generation)
    finish_again: dict = {}
    again, outputs_again, timing = evaluate_models({"base": (tiny_model_dir, None)}, suites, params,
                                                   finish=finish_again, workspace=tmp_path)
    assert timing["reused"] == ["base"]
    assert outputs_again == outputs and finish_again == finish
    assert again["base"] == first["base"]  # scored again, the same scores

    with pytest.raises(AssertionError, match="asked again"):  # another cap is another answer
        evaluate_models({"base": (tiny_model_dir, None)}, suites, params.model_copy(update={"max_new_tokens": 5}),
                        workspace=tmp_path)
    with pytest.raises(AssertionError, match="asked again"):  # evaluate.reuse_answers off: always answered
        evaluate_models({"base": (tiny_model_dir, None)}, suites, params.model_copy(update={"reuse_answers": False}),
                        workspace=tmp_path)
    with pytest.raises(AssertionError, match="asked again"):  # no workspace: always answered
        evaluate_models({"base": (tiny_model_dir, None)}, suites, params)


def test_the_key_follows_weights_adapter_prompts_settings_and_not_paths(tiny_model_dir, setup, tmp_path):
    params, suites = setup
    base = answer_cache.base_digest(tiny_model_dir)
    key = answer_cache.answer_key(params, base, None, suites)
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_model_dir, copy)
    assert answer_cache.base_digest(copy) == base  # the same model in another folder
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-3
    (copy / "config.json").write_text(json.dumps(config))
    assert answer_cache.answer_key(params, answer_cache.base_digest(copy), None, suites) != key

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "/work/a"}))
    with_adapter = answer_cache.answer_key(params, base, adapter, suites)
    assert with_adapter != key
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": "/mlflow/b"}))
    (adapter / "train_info.json").write_text('{"run_id": "abc"}')
    assert answer_cache.answer_key(params, base, adapter, suites) == with_adapter  # downloaded copy
    (adapter / "adapter_model.safetensors").write_bytes(b"other weights")
    assert answer_cache.answer_key(params, base, adapter, suites) != with_adapter

    fewer = {"ifeval": suites["ifeval"][:1], "multi_if": suites["multi_if"]}
    assert answer_cache.answer_key(params, base, None, fewer) != key
    assert answer_cache.answer_key(params.model_copy(update={"backend": "openai"}), base, None, suites) is None


def test_a_damaged_entry_is_answered_again(tiny_model_dir, setup, tmp_path):
    params, suites = setup
    cache = tmp_path / answer_cache.CACHE_DIR
    evaluate_models({"base": (tiny_model_dir, None)}, suites, params, workspace=tmp_path)
    entry = next(cache.glob("*.json"))
    entry.write_text("{ half written")
    _, _, timing = evaluate_models({"base": (tiny_model_dir, None)}, suites, params, workspace=tmp_path)
    assert timing["reused"] == [] and json.loads(entry.read_text())["texts"]
