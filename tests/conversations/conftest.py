"""The answer tests' demo help centre and CPU-sized engine, reused for conversations."""

from tests.answers.conftest import answer_settings, llm_down, lumen_kb

__all__ = ["answer_settings", "llm_down", "lumen_kb"]
