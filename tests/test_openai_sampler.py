"""OpenAISampler against a real HTTP server on 127.0.0.1 (http.server in a thread): the response
contract, retries with backoff on 429/5xx (Retry-After honoured), no retry on other 4xx, a clear
error naming base_url when nothing listens, and the API key only from the environment."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reverso.config import EvaluateParams, SamplerParams
from reverso.errors import ReversoError
from reverso.generation import GenerationSettings, make_sampler
from reverso.generation.base import GenerationError
from reverso.generation.servers import OpenAISampler
from support.servers import free_port

GREEDY = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=16, seed=3)
SAMPLED = GenerationSettings(temperature=0.8, top_p=0.9, max_new_tokens=16, seed=3)


class Script:
    """What the server answers, in order: (status, headers, body) tuples; then a good completion forever."""

    def __init__(self, replies: list[tuple[int, dict[str, str], dict]]):
        self.replies, self.requests, self.times, self.lock = list(replies), [], [], threading.Lock()

    def next(self, body: dict) -> tuple[int, dict[str, str], dict]:
        with self.lock:
            self.times.append(time.monotonic())
            if self.replies:
                return self.replies.pop(0)
        text = f"answer to {body['messages'][-1]['content']}"
        return 200, {}, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "length" if "long" in text else "stop"}],
                         "usage": {"prompt_tokens": len(body["messages"]), "completion_tokens": 5, "total_tokens": 6}}


@pytest.fixture
def endpoint() -> Iterator[callable]:
    started = []

    def start(replies: list[tuple[int, dict[str, str], dict]] | None = None) -> tuple[str, Script]:
        script = Script(replies or [])

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with script.lock:
                    script.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                            "body": body})
                status, headers, reply = script.next(body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", script

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def sampler(url: str, **kwargs) -> OpenAISampler:
    return OpenAISampler(url, "served-model", "TEST_SAMPLER_KEY", progress=False,
                         **{"backoff_s": 0.05, "retries": 3, **kwargs})


def convo(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_response_contract_order_and_greedy_repeats(endpoint) -> None:
    url, script = endpoint()
    out = sampler(url, concurrency=4).generate([convo(f"q{i}") for i in range(6)] + [convo("long")], 3, GREEDY)
    assert [row[0].text for row in out] == [f"answer to q{i}" for i in range(6)] + ["answer to long"]
    assert all(len(row) == 3 and len(set(row)) == 1 for row in out)  # greedy: asked once, repeated n times
    assert len(script.requests) == 7 and {r["path"] for r in script.requests} == {"/v1/chat/completions"}
    assert out[0][0].finish_reason == "stop" and out[-1][0].finish_reason == "length"
    assert (out[0][0].prompt_tokens, out[0][0].completion_tokens) == (2, 5)
    body = script.requests[0]["body"]
    assert body["model"] == "served-model" and body["n"] == 1 and body["temperature"] == 0.0
    assert "seed" not in body and body["max_tokens"] == 16


def test_sampling_sends_one_seed_per_completion_unless_the_server_is_seeded(endpoint) -> None:
    url, script = endpoint()
    out = sampler(url).generate([convo("a"), convo("b")], 2, SAMPLED)
    assert [len(row) for row in out] == [2, 2]
    seeds = sorted(r["body"]["seed"] for r in script.requests)
    assert len(set(seeds)) == 4 and script.requests[0]["body"]["top_p"] == 0.9
    again_url, again = endpoint()
    sampler(again_url).generate([convo("a"), convo("b")], 2, SAMPLED)
    assert sorted(r["body"]["seed"] for r in again.requests) == seeds  # same call, same seeds
    plain_url, plain = endpoint()
    sampler(plain_url, request_seed=False).generate([convo("a")], 2, SAMPLED)
    assert all("seed" not in r["body"] for r in plain.requests)


def test_retries_429_and_5xx_with_exponential_backoff(endpoint) -> None:
    busy = (429, {}, {"error": "slow down"})
    url, script = endpoint([busy, (503, {}, {"error": "loading"}), (500, {}, {"error": "oops"})])
    out = sampler(url, backoff_s=0.1).generate([convo("x")], 1, GREEDY)
    assert out[0][0].text == "answer to x" and len(script.times) == 4
    gaps = [b - a for a, b in zip(script.times, script.times[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4  # 0.1, 0.2, 0.4 s


def test_retry_after_is_honoured(endpoint) -> None:
    url, script = endpoint([(429, {"Retry-After": "1"}, {"error": "rate limited"})])
    sampler(url, backoff_s=0.01).generate([convo("x")], 1, GREEDY)
    assert len(script.times) == 2 and script.times[1] - script.times[0] >= 1.0


def test_gives_up_after_the_retries_naming_the_endpoint(endpoint) -> None:
    url, script = endpoint([(502, {}, {"error": "bad gateway"})] * 5)
    with pytest.raises(GenerationError, match=f"{url}.*failed after 3 tries: HTTP 502"):
        sampler(url, retries=2).generate([convo("x")], 1, GREEDY)
    assert len(script.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_is_not_retried(endpoint, status) -> None:
    url, script = endpoint([(status, {}, {"error": {"message": "model not found"}})])
    with pytest.raises(GenerationError, match=f"{url} refused the request: HTTP {status}.*model not found"):
        sampler(url).generate([convo("x")], 1, GREEDY)
    assert len(script.requests) == 1


def test_broken_contract_is_an_error(endpoint) -> None:
    url, _ = endpoint([(200, {}, {"choices": []})])
    with pytest.raises(GenerationError, match="response contract"):
        sampler(url, retries=0).generate([convo("x")], 1, GREEDY)


def test_server_down_is_a_clear_user_error_naming_base_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(GenerationError) as caught:
        sampler(url, retries=1, field="evaluate.base_url").generate([convo("x")], 1, GREEDY)
    message = str(caught.value)
    assert url in message and "refused" in message.lower() and "evaluate.base_url" in message
    assert isinstance(caught.value, ReversoError)  # the CLI prints it as one line, no traceback


def test_api_key_only_from_env_and_never_logged(endpoint, monkeypatch, caplog) -> None:
    secret = "sk-reverso-test-4242"
    url, script = endpoint([(503, {}, {"error": "x"})])
    monkeypatch.delenv("TEST_SAMPLER_KEY", raising=False)
    sampler(url).generate([convo("x")], 1, GREEDY)
    assert script.requests[-1]["auth"] is None
    monkeypatch.setenv("TEST_SAMPLER_KEY", secret)
    url, script = endpoint([(503, {}, {"error": "x"}), (401, {}, {"error": "bad key"})])
    with caplog.at_level(logging.DEBUG), pytest.raises(GenerationError) as caught:
        sampler(url).generate([convo("x")], 1, GREEDY)
    assert {r["auth"] for r in script.requests} == {f"Bearer {secret}"}
    assert secret not in json.dumps([r["body"] for r in script.requests])
    assert secret not in caplog.text and secret not in str(caught.value)
    assert "sampler endpoint" in caplog.text  # the retry was logged, without the key
    with pytest.raises(ValueError, match="extra"):
        SamplerParams(api_key=secret)  # params have no place for a key


def test_factory_wires_server_fields_and_refuses_an_unserved_adapter(endpoint, tmp_path) -> None:
    url, script = endpoint()
    params = EvaluateParams(backend="openai", base_url=url, model_name="base-model", retries=0, request_seed=False)
    built = make_sampler("openai", tmp_path, server=params, section="evaluate", progress=False)
    assert (built.model, built.retries, built.request_seed, built.field) == ("base-model", 0, False, "evaluate.base_url")
    with pytest.raises(ValueError, match="adapter"):
        make_sampler("openai", tmp_path, tmp_path / "adapter", server=params)
    served = make_sampler("openai", tmp_path, tmp_path / "adapter", server=params, served_as="policy-lora")
    served.generate([convo("x")], 1, GREEDY)
    assert script.requests[0]["body"]["model"] == "policy-lora"
    with pytest.raises(ValueError, match="base_url and model_name"):
        EvaluateParams(backend="openai")  # refused at load, before any stage runs
    with pytest.raises(ValueError, match="evaluate.base_url"):
        make_sampler("openai", tmp_path, server=None, section="evaluate")


def test_evaluate_names_the_missing_served_adapter(tmp_path) -> None:
    from reverso.config import ConfigError
    from reverso.evaluate import evaluate_models

    params = EvaluateParams(backend="openai", base_url="http://127.0.0.1:9/v1", model_name="base")
    models = {"base": (tmp_path, None), "policy": (tmp_path, tmp_path / "adapter")}
    with pytest.raises(ConfigError, match="evaluate.served_adapters.policy"):
        evaluate_models(models, {}, params)  # before any model is asked anything
