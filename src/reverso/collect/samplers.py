"""Moved to ``reverso.generation``; this alias keeps old imports working. Import from there."""

from reverso.generation.base import Completion, Conversation, GenerationSettings, Sampler
from reverso.generation.hf import HFSampler
from reverso.generation.servers import OpenAISampler, VLLMSampler

__all__ = ["Completion", "Conversation", "GenerationSettings", "HFSampler", "OpenAISampler", "Sampler", "VLLMSampler"]
