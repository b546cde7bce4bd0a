"""Build the configured LLM backend. Cheap: nothing is loaded or connected until first use."""

from __future__ import annotations

from resolvo.answers.llm.base import LLMBackend
from resolvo.answers.llm.openai_backend import OpenAIBackend
from resolvo.answers.llm.transformers_backend import TransformersBackend

BACKENDS = ("transformers", "openai")


def make_backend(
    *,
    backend: str,
    model: str,
    base_url: str | None = None,
    api_key: str | None = None,
    device: str = "cpu",
    tokenizer: str | None = None,
    context_window: int | None = None,
    threads: int | None = None,
    connect_timeout_s: float = 5.0,
    max_retries: int = 2,
    retry_backoff_s: float = 0.5,
) -> LLMBackend:
    """An LLM backend from configuration values; raises ``ValueError`` on an invalid combination.

    ``transformers`` uses ``model``, ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``) and
    ``threads``. ``openai`` uses ``model`` (the name the server serves), ``base_url`` (required, with
    the API version: ``http://vllm:8000/v1``), ``api_key``, ``tokenizer`` (a local tokenizer for exact
    token counts), ``context_window`` and the connection settings.
    """
    if not model:
        raise ValueError("an LLM model must be configured")
    if backend == "transformers":
        return TransformersBackend(model, device=device, threads=threads)
    if backend == "openai":
        if not base_url:
            raise ValueError("the openai backend needs base_url (e.g. http://vllm:8000/v1)")
        return OpenAIBackend(
            model,
            base_url=base_url,
            api_key=api_key,
            tokenizer=tokenizer,
            context_window=context_window,
            connect_timeout_s=connect_timeout_s,
            max_retries=max_retries,
            retry_backoff_s=retry_backoff_s,
        )
    raise ValueError(f"unknown LLM backend {backend!r}; choose one of {', '.join(BACKENDS)}")
