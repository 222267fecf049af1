"""Text generation for collect (n samples per prompt) and evaluate (greedy), behind one interface.

Backends: ``openvino`` (OpenVINO GenAI on CPU, the default), ``hf`` (transformers ``generate``, the
reference), ``vllm`` (GPUs) and ``openai`` (any OpenAI-compatible server). Heavy imports happen
inside the backends, so importing this package is cheap.
"""

from reverso.generation.base import Completion, Conversation, GenerationSettings, Sampler
from reverso.generation.factory import make_sampler

__all__ = ["Completion", "Conversation", "GenerationSettings", "Sampler", "make_sampler"]
