"""Generation backends: OpenVINO wiring on a tiny random Llama (export cache, prompt ids, seeds,
finish reasons, the penalty semantics), and the same contract as the HF reference sampler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverso.config import OpenVINOParams
from reverso.generation import GenerationSettings, make_sampler
from reverso.generation.base import completion_from_ids, prompt_ids
from reverso.generation.convert import EXPORT_INFO, ExportError, openvino_model_dir
from reverso.generation.openvino import OpenVINOSampler

CONVERSATIONS = [
    [{"role": "system", "content": "You are terse.\n\nFollow these rules in every reply:\n1. No commas."},
     {"role": "user", "content": "Explain rain."}],
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you today, friend?"}],
]


@pytest.fixture(scope="module")
def ov_params(tmp_path_factory: pytest.TempPathFactory) -> OpenVINOParams:
    """f32 inference and KV cache, as evaluation; fp32 weights, since a random model's logits are near-ties."""
    return OpenVINOParams(weight_format="fp32", cache_dir=str(tmp_path_factory.mktemp("openvino-cache")))


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, ov_params: OpenVINOParams) -> OpenVINOSampler:
    sampler = make_sampler("openvino", tiny_model_dir, openvino=ov_params, progress=False)
    assert isinstance(sampler, OpenVINOSampler)
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


def test_prompt_ids_are_the_chat_template_ids(engine: OpenVINOSampler) -> None:
    for conversation in CONVERSATIONS:
        expected = engine.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
        assert prompt_ids(engine.tokenizer, conversation) == expected
        settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=2, seed=0)
        assert engine.generate([conversation], 1, settings)[0][0].prompt_tokens == len(expected)


def test_export_is_cached_by_weights_digest(tiny_model_dir: Path, tiny_adapter: Path, ov_params: OpenVINOParams,
                                            engine: OpenVINOSampler, tmp_path: Path) -> None:
    base_dir = openvino_model_dir(tiny_model_dir, None, "fp32", ov_params.cache_dir)
    policy_dir = openvino_model_dir(tiny_model_dir, tiny_adapter, "fp32", ov_params.cache_dir)
    assert policy_dir != base_dir and (policy_dir / EXPORT_INFO).exists()
    missing = tmp_path / "no-such-optimum-cli"  # an export now would fail: only the cache can answer
    assert openvino_model_dir(tiny_model_dir, None, "fp32", ov_params.cache_dir, missing) == base_dir
    assert openvino_model_dir(tiny_model_dir, tiny_adapter, "fp32", ov_params.cache_dir, missing) == policy_dir
    with pytest.raises(ExportError, match="make setup"):  # another weight format is another entry
        openvino_model_dir(tiny_model_dir, None, "fp16", ov_params.cache_dir, missing)
    info = json.loads((policy_dir / EXPORT_INFO).read_text())
    assert info["adapter"] == str(tiny_adapter) and len(info["digest"]) == 64


def test_a_failed_export_names_the_model_and_leaves_no_entry(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "not-a-model"}')
    fake_cli = tmp_path / "optimum-cli"
    fake_cli.write_text("#!/bin/sh\necho 'cannot read the model' >&2\nexit 3\n")
    fake_cli.chmod(0o755)
    with pytest.raises(ExportError, match=r"export of .*broken failed \(exit 3\)"):
        openvino_model_dir(broken, None, "fp16", tmp_path / "cache", fake_cli)
    assert not [p for p in (tmp_path / "cache").iterdir()]  # nothing half-written a later run could trust


def test_policy_engine_serves_the_merged_adapter(tiny_model_dir: Path, tiny_adapter: Path,
                                                 engine: OpenVINOSampler, ov_params: OpenVINOParams) -> None:
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=6, seed=0)
    policy = make_sampler("openvino", tiny_model_dir, tiny_adapter, openvino=ov_params, progress=False)
    base_out = engine.generate(CONVERSATIONS, 1, settings)
    policy_out = policy.generate(CONVERSATIONS, 1, settings)
    hf = make_sampler("hf", tiny_model_dir, tiny_adapter, progress=False)
    hf_out = hf.generate(CONVERSATIONS, 1, settings)
    assert [r[0].text for r in policy_out] == [r[0].text for r in hf_out]  # fp32 greedy: same tokens as HF
    assert [r[0].text for r in policy_out] != [r[0].text for r in base_out]


def test_greedy_matches_hf_and_reports_tokens(tiny_model_dir: Path, engine: OpenVINOSampler) -> None:
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=7, seed=0)
    hf = make_sampler("hf", tiny_model_dir, progress=False)
    engine_out, hf_out = engine.generate(CONVERSATIONS, 2, settings), hf.generate(CONVERSATIONS, 2, settings)
    for conversation, got, want in zip(CONVERSATIONS, engine_out, hf_out, strict=True):
        assert len(got) == 2 and got[0] == got[1]  # greedy: n identical completions
        assert got == want
        assert got[0].prompt_tokens == len(prompt_ids(engine.tokenizer, conversation))
        assert got[0].finish_reason == ("length" if got[0].completion_tokens == 7 else "stop")


@pytest.mark.parametrize(("presence", "frequency"), [(0.5, 0.0), (1.5, 0.0), (0.0, 0.4), (0.7, 0.3)])
def test_penalties_mean_the_same_in_openvino_and_hf(tiny_model_dir: Path, engine: OpenVINOSampler,
                                                    presence: float, frequency: float) -> None:
    """Both move the logits of tokens this reply generated (never the prompt's) toward zero; greedy makes it exact."""
    plain = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0)
    penalised = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=24, seed=0,
                                   presence_penalty=presence, frequency_penalty=frequency)
    hf = make_sampler("hf", tiny_model_dir, progress=False)
    with_penalty = engine.generate(CONVERSATIONS, 1, penalised)
    assert with_penalty == hf.generate(CONVERSATIONS, 1, penalised)
    assert with_penalty != engine.generate(CONVERSATIONS, 1, plain)  # the penalty changed the decode


def test_penalties_count_generated_tokens_only() -> None:
    """The HF processor leaves every logit alone until the reply has tokens; then presence once per
    token, frequency once per use, each toward zero."""
    import torch

    from reverso.generation.hf import GeneratedTokenPenalty

    scores = torch.tensor([[0.0, 2.0, -2.0, 3.0, 1.0, 1.0, 0.5, 4.0]])
    prompt = torch.tensor([[3, 4, 5]])
    assert torch.equal(GeneratedTokenPenalty(1.0, 1.0, 3)(prompt, scores.clone()), scores)
    reply = torch.tensor([[3, 4, 5, 7, 7, 2]])
    presence = GeneratedTokenPenalty(1.0, 0.0, 3)(reply, scores.clone())
    assert presence[0, 7] == 3.0 and presence[0, 2] == -1.0
    assert torch.equal(presence[0, :2], scores[0, :2]) and torch.equal(presence[0, 3:7], scores[0, 3:7])
    frequency = GeneratedTokenPenalty(0.0, 0.5, 3)(reply, scores.clone())
    assert frequency[0, 7] == 3.0 and frequency[0, 2] == -1.5  # 7 was generated twice, 2 once
    both = GeneratedTokenPenalty(1.0, 0.5, 3)(reply, scores.clone())
    assert both[0, 7] == 2.0 and both[0, 2] == -0.5


def test_sampling_is_seeded(tiny_model_dir: Path, tmp_path: Path) -> None:
    from reverso.config import SamplingOpenVINOParams

    engine = make_sampler("openvino", tiny_model_dir, progress=False,
                          openvino=SamplingOpenVINOParams(cache_dir=str(tmp_path / "cache")))  # collect's int8
    settings = GenerationSettings(temperature=1.0, top_p=0.95, max_new_tokens=8, seed=5)
    first = engine.generate(CONVERSATIONS, 3, settings)
    again = engine.generate(CONVERSATIONS, 3, settings)
    other = engine.generate(CONVERSATIONS, 3, GenerationSettings(1.0, 0.95, 8, seed=6))
    assert first == again
    assert first != other
    assert all(len(row) == 3 for row in first)
    assert any(len({c.text for c in row}) > 1 for row in first)  # the n samples differ
    same_prompt = engine.generate([CONVERSATIONS[0]] * 2, 3, settings)
    assert same_prompt[0] != same_prompt[1]  # each prompt of a call draws from its own seed
    for row in first:
        for completion in row:
            assert completion.finish_reason in {"stop", "length"}
            assert completion.completion_tokens <= 8
            assert (completion.finish_reason == "length") == (completion.completion_tokens == 8)


def test_finish_reason_cuts_at_the_first_stop_token(engine: OpenVINOSampler) -> None:
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
