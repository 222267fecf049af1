"""collect: seed corpus + constraint sampler -> sessions; policy sampler -> n responses per turn."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.collect.samplers import GenerationSettings, HFSampler, OpenAISampler, Sampler, VLLMSampler
from reverso.collect.sessions import build_sessions, load_seed, load_user_sessions
from reverso.config import CollectParams, SamplerParams
from reverso.contracts import Message, Response, SamplerInfo, Session
from reverso.io import DataError, enforce_quarantine_limit, write_json, write_jsonl, write_quarantine
from reverso.prompts import as_dicts, session_constraints, turn_messages


def make_sampler(params: SamplerParams, model_dir: str | Path) -> Sampler:
    if params.backend == "openai":
        if not params.base_url or not params.model_name:
            raise ValueError("collect.sampler.base_url and collect.sampler.model_name are required for backend=openai")
        return OpenAISampler(params.base_url, params.model_name, params.api_key_env)
    if params.backend == "vllm":
        return VLLMSampler(str(model_dir))
    from reverso.prepare_model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir)
    return HFSampler(model, tokenizer, batch_size=params.batch_size)


def best_sample(session: Session, turn: int, texts: list[str]) -> int:
    """Index of the response satisfying most active constraints (ties: the first). Used as history."""
    active = [c for c in session_constraints(session, turn) if engine.is_verifiable(c)]
    context = engine.CheckContext(prompt=session.turns[turn].user)
    scores = [sum(v.passed for v in engine.check_all(active, text, context)) for text in texts]
    return max(range(len(texts)), key=lambda i: (scores[i], -i))


def sample_responses(sessions: list[Session], sampler: Sampler, params: CollectParams, model_name: str) -> list[Response]:
    """Sample turn by turn; each session's next turn sees its best response so far as history."""
    sampler_params = params.sampler
    histories: dict[str, list[Message]] = {s.session_id: [] for s in sessions}
    rows: list[Response] = []
    for turn in range(max(len(s.turns) for s in sessions)):
        active = [s for s in sessions if turn < len(s.turns)]
        conversations = [as_dicts(turn_messages(s, turn, histories[s.session_id])) for s in active]
        settings = GenerationSettings(sampler_params.temperature, sampler_params.top_p,
                                      sampler_params.max_new_tokens, params.seed + turn)
        outputs = sampler.generate(conversations, params.samples_per_turn, settings)
        info = SamplerInfo(backend=sampler.name, temperature=sampler_params.temperature,
                           seed=settings.seed, top_p=sampler_params.top_p)
        for session, completions in zip(active, outputs, strict=True):
            history = list(histories[session.session_id])
            for index, completion in enumerate(completions):
                rows.append(Response(
                    session_id=session.session_id, turn=turn, sample_idx=index, history=history,
                    text=completion.text, model=model_name, sampler=info,
                    finish_reason=completion.finish_reason, prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                ))
            best = completions[best_sample(session, turn, [c.text for c in completions])]
            histories[session.session_id] = [*history, Message(role="user", content=session.turns[turn].user),
                                             Message(role="assistant", content=best.text)]
    return rows


def collect(
    params: CollectParams,
    model_dir: str | Path,
    seed_dir: str | Path,
    sessions_out: str | Path,
    responses_out: str | Path,
    metrics_out: str | Path,
    sampler: Sampler | None = None,
) -> dict[str, Any]:
    """Run the collect stage; returns (and writes) its metrics."""
    if params.sessions_file or params.hf_dataset:
        source = params.sessions_file or params.hf_dataset
        sessions, quarantined = load_user_sessions(source, hf_dataset=bool(params.hf_dataset))
        write_quarantine(sessions_out, quarantined)
        enforce_quarantine_limit("collect", len(sessions) + len(quarantined), len(quarantined),
                                 params.max_quarantine_fraction)
        if not sessions:
            raise DataError(f"{source}: no valid sessions (see {sessions_out} quarantine file)")
    else:
        corpus = load_seed(seed_dir)
        quarantined = corpus.quarantined
        write_quarantine(sessions_out, quarantined)
        sessions = build_sessions(
            corpus, "train", params.sessions, params.seed, turns=params.turns,
            system_constraints=params.system_constraints, turn_constraints=params.turn_constraints,
            cumulative=params.cumulative, eval_fraction=params.eval_fraction,
            soft_constraints=params.soft_constraints,
        )
    write_jsonl(sessions_out, sessions)
    started = time.perf_counter()
    sampler = sampler or make_sampler(params.sampler, model_dir)
    responses = sample_responses(sessions, sampler, params, model_name=str(model_dir))
    elapsed = time.perf_counter() - started
    write_jsonl(responses_out, responses)
    tokens = sum(r.completion_tokens for r in responses)
    metrics = {
        "sessions": len(sessions),
        "responses": len(responses),
        "input_rows_quarantined": len(quarantined),
        "completion_tokens": tokens,
        "tokens_per_second": round(tokens / elapsed, 2) if elapsed else 0.0,
        "truncated_responses": sum(r.finish_reason == "length" for r in responses),
    }
    write_json(metrics_out, metrics)
    return metrics
