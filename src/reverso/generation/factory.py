"""Build the configured sampler: one place maps params to a backend, for collect and evaluate alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverso.generation.base import Sampler


def make_sampler(backend: str, model_dir: str | Path, adapter: str | Path | None = None, *, openvino: Any = None,
                 batch_size: int = 16, progress: bool = True, server: Any = None) -> Sampler:
    """A sampler for base ``model_dir`` (+ LoRA ``adapter``) on ``backend``: openvino | hf | vllm | openai.

    ``openvino`` is an ``OpenVINOParams``; ``server`` carries ``base_url``/``model_name``/``api_key_env``
    for the openai backend (``SamplerParams`` does).
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
            raise ValueError("backend=openai needs sampler.base_url and sampler.model_name")
        return OpenAISampler(server.base_url, server.model_name, server.api_key_env)
    if backend == "vllm":
        from reverso.generation.servers import VLLMSampler

        if adapter is not None:
            raise ValueError("backend=vllm serves a plain model folder; merge the adapter first or use openvino/hf")
        return VLLMSampler(str(model_dir))
    raise ValueError(f"unknown generation backend {backend!r} (openvino | hf | vllm | openai)")
