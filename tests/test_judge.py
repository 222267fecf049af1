"""Soft constraints and the judge, against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from reverso import constraints as engine
from reverso.config import ReverseParams
from reverso.constraints.judge import Judge, OpenAIChatBackend, parse_output
from reverso.constraints.soft import flip_modal
from reverso.contracts import Response, SamplerInfo, Session, Turn
from reverso.reverse import judge_response

GOOD = json.dumps({"verdicts": [{"index": 1, "passed": False, "reason": "too casual"}]})


class FakeServer:
    """Replies with the queued contents, one per request (the last one repeats); records requests."""

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.requests = list(replies), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"auth": self.headers.get("Authorization"), "body": body})
                content = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture()
def fake() -> Iterator[callable]:
    servers = []

    def start(replies: list[str]) -> FakeServer:
        servers.append(FakeServer(replies))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


TONE = engine.parse({"id": "soft:tone", "kwargs": {"text": "Use a formal tone."}})


def test_good_output_and_key_from_env_only(fake, monkeypatch) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-123")
    server = fake([GOOD])
    verdicts = Judge(OpenAIChatBackend(server.url, "judge-model", "MY_JUDGE_KEY")).judge([TONE], "yo whats up")
    assert [(v.passed, v.error) for v in verdicts] == [(False, False)] and "too casual" in verdicts[0].reason
    assert server.requests[0]["auth"] == "Bearer sk-test-123"
    assert "sk-test-123" not in json.dumps(server.requests[0]["body"])


def test_malformed_output_is_retried(fake) -> None:
    server = fake(["not json at all", '{"verdicts": [{"index": 1, "passed": "maybe"}]}', GOOD])
    verdicts = Judge(OpenAIChatBackend(server.url, "m"), retries=2).judge([TONE], "text")
    assert not verdicts[0].error and len(server.requests) == 3


def test_always_malformed_is_an_error_never_a_pass(fake) -> None:
    server = fake(['{"verdicts": []}'])
    verdicts = Judge(OpenAIChatBackend(server.url, "m"), retries=1).judge([TONE], "text")
    assert verdicts[0].error and not verdicts[0].passed and "judge error" in verdicts[0].reason


def test_parse_output_checks_the_schema() -> None:
    assert parse_output("```json\n" + GOOD + "\n```", 1)[0].passed is False
    for bad in ('{"verdicts": [{"index": 2, "passed": true, "reason": "x"}]}',
                '{"verdicts": [{"index": 1, "passed": true, "reason": "x", "extra": 1}]}', "[]"):
        with pytest.raises(ValueError):
            parse_output(bad, 1)


@pytest.mark.parametrize("text", ["Use a formal tone.", "You must stay in character.", "Never use slang.",
                                  "Always greet the user.", "Do not mention prices.", "you should be brief"])
def test_soft_reversal_is_an_involution(text: str) -> None:
    constraint = engine.parse({"id": "soft:style", "kwargs": {"text": text}})
    reversed_ = engine.reverse(constraint)
    assert engine.reverse(reversed_) == constraint
    assert engine.describe(reversed_, random.Random(0)) == flip_modal(text) != text


def test_reverse_stage_uses_the_judge_and_confirms_reversals(fake) -> None:
    session = Session(session_id="s1", system="You are a butler.", turns=[Turn(user="Greet me.")], split="train",
                      seed=0, system_constraints=[{"id": "soft:tone", "kwargs": {"text": "Use a formal tone."}},
                                                  {"id": "punctuation:no_comma", "kwargs": {}}])
    response = Response(session_id="s1", turn=0, sample_idx=0, history=[], text="yo whats up", model="m",
                        sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0), finish_reason="stop",
                        prompt_tokens=1, completion_tokens=3)
    confirm = json.dumps({"verdicts": [{"index": 1, "passed": True, "reason": "indeed not formal"}]})
    server = fake([GOOD, confirm])
    params = ReverseParams(soft_judge="openai", judge_base_url=server.url, judge_model="m")
    judge = Judge(OpenAIChatBackend(server.url, "m"))
    row, reason = judge_response(session, response, params, judge)
    assert reason is None and row.passed == [False, True] and row.judge == "rule+openai:m"
    assert row.reversed_constraints[0].kwargs == {"text": "Use a formal tone.", "negated": True}

    unconfirmed = fake([GOOD, GOOD])  # the re-judge says the reversed instruction is not met either
    row, reason = judge_response(session, response, params, Judge(OpenAIChatBackend(unconfirmed.url, "m")))
    assert row is None and "not confirmed" in reason
    row, reason = judge_response(session, response, ReverseParams(), None)
    assert row is None and "need a judge" in reason


def test_local_hf_judge_backend_runs_and_garbage_is_an_error(tiny_model_dir) -> None:
    from reverso.constraints.judge import HFChatBackend

    backend = HFChatBackend(str(tiny_model_dir), max_new_tokens=16)
    assert isinstance(backend.complete([{"role": "user", "content": "hi"}]), str)
    verdicts = Judge(backend, retries=0).judge([TONE], "text")
    assert verdicts[0].error and not verdicts[0].passed  # random weights never produce valid JSON


def test_judge_can_word_the_soft_reversal_and_it_must_still_be_confirmed(fake) -> None:
    session = Session(session_id="s1", system="You are a butler.", turns=[Turn(user="Greet me.")], split="train",
                      seed=0, system_constraints=[{"id": "soft:tone", "kwargs": {"text": "Use a formal tone."}}])
    response = Response(session_id="s1", turn=0, sample_idx=0, history=[], text="yo whats up", model="m",
                        sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0), finish_reason="stop",
                        prompt_tokens=1, completion_tokens=3)
    confirm = json.dumps({"verdicts": [{"index": 1, "passed": True, "reason": "casual indeed"}]})
    rewrite = json.dumps({"opposite": "Use a casual, informal tone."})
    server = fake([GOOD, "not json", rewrite, confirm])
    params = ReverseParams(soft_judge="openai", judge_base_url=server.url, judge_model="m", soft_reversal="judge")
    row, reason = judge_response(session, response, params, Judge(OpenAIChatBackend(server.url, "m")))
    assert reason is None and row.passed == [False]
    reversed_ = engine.parse(row.reversed_constraints[0].model_dump())
    assert engine.describe(reversed_, random.Random(0)) == "Use a casual, informal tone."
    assert engine.reverse(engine.reverse(reversed_)) == reversed_
    confirmation = server.requests[-1]["body"]["messages"][1]["content"]
    assert "Use a casual, informal tone." in confirmation  # the judge re-checked the model-worded reversal

    # A rewrite that never fits the schema falls back to the rule flip (still confirmed by re-judging).
    server = fake([GOOD, '{"opposite": ""}', "nope", '{"other": 1}', confirm])
    row, reason = judge_response(session, response, params, Judge(OpenAIChatBackend(server.url, "m")))
    assert reason is None and "opposite" not in row.reversed_constraints[0].kwargs
    assert engine.describe(engine.parse(row.reversed_constraints[0].model_dump()), random.Random(0)) == \
        flip_modal("Use a formal tone.")
