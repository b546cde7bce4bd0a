"""LLM backends for the answering engine: in-process transformers or an OpenAI-compatible server.

Plain Python, configured through arguments (no Django). See docs/answering-llm.md.
"""

from resolvo.answers.llm.base import (
    ChatMessage,
    GenerationParams,
    LLMBackend,
    LLMRequestRejected,
    LLMUnavailable,
    TextStream,
    Usage,
)
from resolvo.answers.llm.factory import make_backend
from resolvo.answers.llm.hf_loading import BUNDLED_SMOLLM2

__all__ = [
    "BUNDLED_SMOLLM2",
    "ChatMessage",
    "GenerationParams",
    "LLMBackend",
    "LLMRequestRejected",
    "LLMUnavailable",
    "TextStream",
    "Usage",
    "make_backend",
]
