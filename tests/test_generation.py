"""Generation backends: engine wiring on a tiny random Llama (conversion cache, prompt tokens,
seeds, finish reasons), and the same contract as the HF reference sampler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ctranslate2")

from reverso.config import EngineParams  # noqa: E402
from reverso.generation import GenerationSettings, make_sampler  # noqa: E402
from reverso.generation.base import completion_from_ids, prompt_ids  # noqa: E402
from reverso.generation.convert import ENGINE_INFO, engine_model_dir  # noqa: E402
from reverso.generation.engine import EngineSampler  # noqa: E402

CONVERSATIONS = [
    [{"role": "system", "content": "You are terse.\n\nFollow these rules in every reply:\n1. No commas."},
     {"role": "user", "content": "Explain rain."}],
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you today, friend?"}],
]


@pytest.fixture(scope="module")
def engine_params(tmp_path_factory: pytest.TempPathFactory) -> EngineParams:
    return EngineParams(compute_type="float32", cache_dir=str(tmp_path_factory.mktemp("engine-cache")))


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, engine_params: EngineParams) -> EngineSampler:
    sampler = make_sampler("engine", tiny_model_dir, engine=engine_params)
    assert isinstance(sampler, EngineSampler)
    return sampler


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with non-zero weights, so merging it changes the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


def test_engine_feeds_the_chat_template_ids(engine: EngineSampler) -> None:
    vocabulary = json.loads((Path(engine.engine_dir) / "vocabulary.json").read_text())
    index = {token: i for i, token in enumerate(vocabulary)}
    for conversation in CONVERSATIONS:
        expected = engine.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
        assert [index[t] for t in engine.prompt_tokens(conversation)] == expected
        assert prompt_ids(engine.tokenizer, conversation) == expected


def test_conversion_is_cached_by_weights_digest(tiny_model_dir: Path, tiny_adapter: Path, engine: EngineSampler,
                                                engine_params: EngineParams, monkeypatch: pytest.MonkeyPatch) -> None:
    import ctranslate2.converters

    class Forbidden:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("converted again although nothing changed")

    base_dir = Path(engine.engine_dir)
    policy_dir = engine_model_dir(tiny_model_dir, tiny_adapter, "float32", engine_params.cache_dir)
    assert policy_dir != base_dir and (policy_dir / ENGINE_INFO).exists()
    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", Forbidden)
    assert engine_model_dir(tiny_model_dir, None, "float32", engine_params.cache_dir) == base_dir
    assert engine_model_dir(tiny_model_dir, tiny_adapter, "float32", engine_params.cache_dir) == policy_dir
    with pytest.raises(AssertionError, match="converted again"):  # another compute type is another entry
        engine_model_dir(tiny_model_dir, None, "int8", engine_params.cache_dir)
    info = json.loads((policy_dir / ENGINE_INFO).read_text())
    assert info["adapter"] == str(tiny_adapter) and len(info["digest"]) == 64


def test_policy_engine_serves_the_merged_adapter(tiny_model_dir: Path, tiny_adapter: Path,
                                                 engine: EngineSampler, engine_params: EngineParams) -> None:
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=6, seed=0)
    policy = make_sampler("engine", tiny_model_dir, tiny_adapter, engine=engine_params)
    base_out = engine.generate(CONVERSATIONS, 1, settings)
    policy_out = policy.generate(CONVERSATIONS, 1, settings)
    hf = make_sampler("hf", tiny_model_dir, tiny_adapter, progress=False)
    hf_out = hf.generate(CONVERSATIONS, 1, settings)
    assert [r[0].text for r in policy_out] == [r[0].text for r in hf_out]  # fp32 greedy: same tokens as HF
    assert [r[0].text for r in policy_out] != [r[0].text for r in base_out]


def test_greedy_matches_hf_and_reports_tokens(tiny_model_dir: Path, engine: EngineSampler) -> None:
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=7, seed=0)
    hf = make_sampler("hf", tiny_model_dir, progress=False)
    engine_out, hf_out = engine.generate(CONVERSATIONS, 2, settings), hf.generate(CONVERSATIONS, 2, settings)
    for conversation, got, want in zip(CONVERSATIONS, engine_out, hf_out, strict=True):
        assert len(got) == 2 and got[0] == got[1]  # greedy: n identical completions
        assert got == want
        assert got[0].prompt_tokens == len(prompt_ids(engine.tokenizer, conversation))
        assert got[0].finish_reason == ("length" if got[0].completion_tokens == 7 else "stop")


def test_repetition_penalty_means_the_same_in_engine_and_hf(tiny_model_dir: Path, engine: EngineSampler) -> None:
    """Both penalise every token already in the sequence, prompt included; greedy makes it exact."""
    plain = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0)
    penalised = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0, repetition_penalty=1.5)
    hf = make_sampler("hf", tiny_model_dir, progress=False)
    with_penalty = engine.generate(CONVERSATIONS, 1, penalised)
    assert with_penalty == hf.generate(CONVERSATIONS, 1, penalised)
    assert with_penalty != engine.generate(CONVERSATIONS, 1, plain)  # the penalty changed the decode


def test_sampling_is_seeded(engine: EngineSampler) -> None:
    settings = GenerationSettings(temperature=1.0, top_p=0.95, max_new_tokens=8, seed=5)
    first = engine.generate(CONVERSATIONS, 3, settings)
    again = engine.generate(CONVERSATIONS, 3, settings)
    other = engine.generate(CONVERSATIONS, 3, GenerationSettings(1.0, 0.95, 8, seed=6))
    assert first == again
    assert first != other
    assert all(len(row) == 3 for row in first)
    assert any(len({c.text for c in row}) > 1 for row in first)  # the n samples differ
    for row in first:
        for completion in row:
            assert completion.finish_reason in {"stop", "length"}
            assert completion.completion_tokens <= 8
            assert (completion.finish_reason == "length") == (completion.completion_tokens == 8)


def test_finish_reason_cuts_at_the_first_stop_token(engine: EngineSampler) -> None:
    tokenizer, stops = engine.tokenizer, engine.stops
    words = tokenizer.encode("hello there", add_special_tokens=False)
    stopped = completion_from_ids(tokenizer, [*words, next(iter(stops)), *words], 12, stops)
    assert (stopped.finish_reason, stopped.completion_tokens, stopped.prompt_tokens) == ("stop", len(words), 12)
    assert stopped.text == "hello there"
    capped = completion_from_ids(tokenizer, words, 12, stops)
    assert (capped.finish_reason, capped.completion_tokens) == ("length", len(words))


def test_unknown_backend_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown generation backend"):
        make_sampler("llamafile", tiny_model_dir)
