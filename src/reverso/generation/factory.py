"""Build the configured sampler: one place maps params to a backend, for collect and evaluate alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverso.generation.base import Sampler


def make_sampler(backend: str, model_dir: str | Path, adapter: str | Path | None = None, *, openvino: Any = None,
                 batch_size: int = 16, progress: bool = True, server: Any = None, seed: int = 0,
                 served_as: str | None = None, section: str = "collect.sampler") -> Sampler:
    """A sampler for base ``model_dir`` (+ LoRA ``adapter``) on ``backend``: openvino | hf | vllm | openai.

    ``openvino`` is an ``OpenVINOParams``; ``server`` a ``ServerFields`` (``SamplerParams`` and
    ``EvaluateParams`` are): ``base_url``/``model_name``/``api_key_env``/... for openai, ``vllm`` for vllm.
    ``seed`` seeds the vllm engine (per-request seeds where the platform has them). An adapter on openai
    must be served by the server under ``served_as``; on vllm it is merged into a cached folder first.
    """
    if backend == "openvino":
        from reverso.config import OpenVINOParams
        from reverso.generation.openvino import build_openvino_sampler

        return build_openvino_sampler(model_dir, adapter, openvino or OpenVINOParams(), progress=progress)
    if backend == "hf":
        from reverso.generation.hf import HFSampler
        from reverso.prepare_model import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(model_dir, adapter)
        return HFSampler(model, tokenizer, batch_size=batch_size, progress=progress)
    if backend == "openai":
        from reverso.generation.servers import OpenAISampler

        if server is None or not server.base_url or not server.model_name:
            raise ValueError(f"backend=openai needs {section}.base_url and {section}.model_name")
        if adapter is not None and not served_as:
            raise ValueError(f"backend=openai answers with the model the server serves; adapter {adapter} needs "
                             "the name the server serves it under (docs/scale-out.md)")
        return OpenAISampler(server.base_url, served_as or server.model_name, server.api_key_env,
                             timeout=server.timeout_s, retries=server.retries, concurrency=server.concurrency,
                             request_seed=server.request_seed, progress=progress, field=f"{section}.base_url")
    if backend == "vllm":
        from reverso.generation.config import VLLMParams
        from reverso.generation.servers import VLLMSampler

        params = getattr(server, "vllm", None) or VLLMParams()
        if adapter is not None:
            from reverso.generation.merge import merged_model_dir

            model_dir = merged_model_dir(model_dir, adapter, params.merged_dir)
        return VLLMSampler(model_dir, params, seed=seed, progress=progress)
    raise ValueError(f"unknown generation backend {backend!r} (openvino | hf | vllm | openai)")
