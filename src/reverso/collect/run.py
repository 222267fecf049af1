"""The collect entry point; what it does is in the package docstring (reverso/collect/__init__.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.collect.resume import PROGRESS_DIR, Progress, fingerprint
from reverso.collect.sessions import build_sessions, fit_context, load_seed, read_user_sessions
from reverso.config import CollectParams, SamplerParams
from reverso.contracts import Message, Response, SamplerInfo, Session
from reverso.generation import GenerationSettings, Sampler
from reverso.generation import make_sampler as build_sampler
from reverso.generation.hf import HFSampler
from reverso.io import DataError, enforce_quarantine_limit, write_json, write_jsonl, write_quarantine
from reverso.machine import machine_info
from reverso.prompts import as_dicts, session_constraints, turn_messages


__all__ = ["PROGRESS_DIR", "collect", "make_sampler", "sample_responses"]


def make_sampler(params: SamplerParams, model_dir: str | Path, adapter: str | Path | None = None,
                 seed: int = 0) -> Sampler:
    """The policy sampler ``collect.sampler.backend`` names (openvino | hf | vllm | openai), base + ``adapter``."""
    if params.backend == "openai" and (not params.base_url or not params.model_name):
        raise ValueError("collect.sampler.base_url and collect.sampler.model_name are required for backend=openai")
    return build_sampler(params.backend, model_dir, adapter, openvino=params.openvino, batch_size=params.batch_size,
                         server=params, seed=seed)


def best_sample(session: Session, turn: int, texts: list[str], finished: list[bool] | None = None) -> int:
    """Index of the response used as the next turn's history: a finished one before any reply cut at the
    token cap, then the most active constraints satisfied, then the first."""
    active = [c for c in session_constraints(session, turn) if engine.is_verifiable(c)]
    context = engine.CheckContext(prompt=session.turns[turn].user)
    scores = [sum(v.passed for v in engine.check_all(active, text, context)) for text in texts]
    done = finished if finished is not None else [True] * len(texts)
    return max(range(len(texts)), key=lambda i: (done[i], scores[i], -i))


def _batch_prompts(sampler: Sampler, params: CollectParams) -> int:
    """Prompts per resumable batch: one HF generate batch (so the seeds match an unbatched run); engines
    that batch internally (OpenVINO's continuous batch, vLLM, servers) get larger batches: a killed run
    loses at most one batch."""
    per_batch = max(1, params.sampler.batch_size // params.samples_per_turn)
    if isinstance(sampler, HFSampler):
        return per_batch
    return max(per_batch, 16) if sampler.name == "openvino" else max(per_batch, 64)


def sample_responses(sessions: list[Session], sampler: Sampler, params: CollectParams, model_name: str,
                     progress: Progress | None = None) -> list[Response]:
    """Sample turn by turn, batch by batch; each session's next turn sees its best response so far.

    With ``progress``, each finished batch is recorded before the next starts, and batches an
    interrupted attempt recorded are reused instead of sampled again.
    """
    sampler_params = params.sampler
    histories: dict[str, list[Message]] = {s.session_id: [] for s in sessions}
    rows: list[Response] = []
    size = _batch_prompts(sampler, params)
    for turn in range(max(len(s.turns) for s in sessions)):
        active = [s for s in sessions if turn < len(s.turns)]
        info = SamplerInfo(backend=sampler.name, temperature=sampler_params.temperature,
                           seed=params.seed + turn, top_p=sampler_params.top_p,
                           presence_penalty=sampler_params.presence_penalty,
                           frequency_penalty=sampler_params.frequency_penalty)
        for start in range(0, len(active), size):
            part = active[start : start + size]
            saved = progress.get(turn, start) if progress else None
            if saved is None:
                conversations = [as_dicts(turn_messages(s, turn, histories[s.session_id])) for s in part]
                settings = GenerationSettings(sampler_params.temperature, sampler_params.top_p,
                                              sampler_params.max_new_tokens, params.seed + turn + start,
                                              sampler_params.presence_penalty, sampler_params.frequency_penalty)
                outputs = sampler.generate(conversations, params.samples_per_turn, settings)
                batch: list[Response] = []
                best: dict[str, str] = {}
                for session, completions in zip(part, outputs, strict=True):
                    history = list(histories[session.session_id])
                    for index, completion in enumerate(completions):
                        batch.append(Response(
                            session_id=session.session_id, turn=turn, sample_idx=index, history=history,
                            text=completion.text, model=model_name, sampler=info,
                            finish_reason=completion.finish_reason, prompt_tokens=completion.prompt_tokens,
                            completion_tokens=completion.completion_tokens,
                        ))
                    chosen = best_sample(session, turn, [c.text for c in completions],
                                         [c.finish_reason != "length" for c in completions])
                    best[session.session_id] = completions[chosen].text
                if progress is not None:
                    progress.record(turn, start, batch, best)
            else:
                batch, best = saved
            rows += batch
            for session in part:
                histories[session.session_id] = [*histories[session.session_id],
                                                 Message(role="user", content=session.turns[turn].user),
                                                 Message(role="assistant", content=best[session.session_id])]
    return rows


def collect(
    params: CollectParams,
    model_dir: str | Path,
    seed_dir: str | Path,
    sessions_out: str | Path,
    responses_out: str | Path,
    metrics_out: str | Path,
    sampler: Sampler | None = None,
    progress_dir: str | Path | None = None,
    adapter: str | Path | None = None,
) -> dict[str, Any]:
    """Run the collect stage; returns (and writes) its metrics.

    Sessions too long for the model's context are quarantined before sampling; sampled batches are
    recorded in ``progress_dir`` (the CLI uses ``PROGRESS_DIR``) so a killed run resumes; the outputs are written together at the end.
    ``adapter``: sample with base + this LoRA adapter (the improve loop samples with its champion).
    """
    if params.sessions_file or params.hf_dataset:
        source = params.sessions_file or params.hf_dataset
        loaded = read_user_sessions(source, hf_dataset=bool(params.hf_dataset), held_out=params.held_out_types)
        sessions, quarantined, lines = loaded.rows, loaded.quarantined, loaded.lines
    else:
        corpus = load_seed(seed_dir)
        quarantined = corpus.quarantined
        source = str(sessions_out)
        sessions = build_sessions(
            corpus, "train", params.sessions, params.seed, turns=params.turns,
            system_constraints=params.system_constraints, turn_constraints=params.turn_constraints,
            cumulative=params.cumulative, eval_fraction=params.eval_fraction,
            soft_constraints=params.soft_constraints, exclude=params.held_out_types,
        )
        lines = list(range(1, len(sessions) + 1))
    sessions, too_long = fit_context(sessions, lines, source, model_dir, params.sampler.max_new_tokens)
    quarantined = [*quarantined, *too_long]
    write_quarantine(sessions_out, quarantined)
    if params.sessions_file or params.hf_dataset:
        enforce_quarantine_limit("collect", len(sessions) + len(quarantined), len(quarantined),
                                 params.max_quarantine_fraction)
    if not sessions:
        raise DataError(f"{source}: no valid sessions (see {sessions_out} quarantine file)")
    started = time.perf_counter()
    sampler = sampler or make_sampler(params.sampler, model_dir, adapter, params.seed)
    policy = f"{model_dir}+{adapter}" if adapter is not None else str(model_dir)
    identity = [model_dir, *([adapter] if adapter is not None else [])]
    progress = (Progress.for_run(Path(progress_dir), fingerprint(sessions, params, identity, sampler.name))
                if progress_dir is not None else None)
    if progress is not None and progress.done:
        print(f"collect: resuming: {len(progress.done)} batches already sampled ({progress.path})")
    responses = sample_responses(sessions, sampler, params, model_name=policy, progress=progress)
    elapsed = time.perf_counter() - started
    write_jsonl(sessions_out, sessions)
    write_jsonl(responses_out, responses)
    tokens = sum(r.completion_tokens for r in responses)
    metrics = {
        "sessions": len(sessions),
        "responses": len(responses),
        "input_rows_quarantined": len(quarantined),
        "completion_tokens": tokens,
        "tokens_per_second": round(tokens / elapsed, 2) if elapsed else 0.0,
        **length_metrics(responses, params.sampler.max_new_tokens),
        "machine": machine_info(),  # samples differ between CPUs: say which one drew these
    }
    write_json(metrics_out, metrics)
    if progress is not None:
        progress.finish()
    return metrics


def length_metrics(responses: list[Response], max_new_tokens: int) -> dict[str, Any]:
    """How many replies hit the token cap (pairs leave them out) and how long replies run."""
    lengths = sorted(r.completion_tokens for r in responses)
    truncated = sum(r.finish_reason == "length" for r in responses)

    def quantile(q: float) -> int:
        return lengths[min(len(lengths) - 1, int(q * len(lengths)))] if lengths else 0

    return {
        "truncated_responses": truncated,
        "truncation_rate": round(truncated / len(responses), 4) if responses else 0.0,
        "max_new_tokens": max_new_tokens,
        "completion_tokens_mean": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        "completion_tokens_p50": quantile(0.5),
        "completion_tokens_p95": quantile(0.95),
    }
