"""The contract every LLM backend meets: chat messages in, a stream of text deltas out.

Backends are plain Python objects configured through their constructor (see ``make_backend``);
nothing here reads settings or imports Django. One backend instance is meant to be shared by every
thread of a process, so per-call results (token usage, finish reason, timings) travel on the
``TextStream`` returned by ``stream()`` instead of living on the backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """What to generate.

    ``timeout_s`` is a stall budget, not a deadline for the whole answer: the stream raises
    ``LLMUnavailable`` when no new text arrives for longer than this, including the wait for the
    first token. A long answer that keeps flowing is never cut off by it.
    """

    max_tokens: int = 384
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must not be negative, got {self.temperature}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if any(not s for s in self.stop):
            raise ValueError("stop sequences must be non-empty strings")


@dataclass(frozen=True)
class Usage:
    """Tokens used by one generation.

    ``estimated`` is true when the numbers are not the model's own count (an OpenAI-compatible
    server that does not report usage, and no local tokenizer configured).
    """

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMUnavailable(Exception):
    """The backend is down, unreachable, failed or stalled; the message is readable by an admin."""


class LLMRequestRejected(LLMUnavailable):
    """The backend is up but refused this request (prompt longer than the context, unknown model).

    A subclass so that callers handling ``LLMUnavailable`` handle this too; retrying will not help.
    """


class TextStream(Iterator[str]):
    """The text deltas of one generation, plus what is known about it once it has finished.

    Nothing is sent or computed until the first ``next()``; every failure, including a connection
    that cannot be made, surfaces from iteration as ``LLMUnavailable``. After the iterator is
    exhausted, ``usage`` and ``finish_reason`` are set (``finish_reason`` is ``"stop"`` for a natural
    end or a stop sequence, ``"length"`` when ``max_tokens`` ran out). ``close()`` (or leaving a
    ``with`` block) abandons the generation and frees the backend's resources for it.
    """

    def __init__(self, produce: Callable[[TextStream], Iterator[str]]) -> None:
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.started_at: float | None = None
        self.first_delta_s: float | None = None
        self.finished_s: float | None = None
        self._produce = produce
        self._deltas: Iterator[str] | None = None

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        if self._deltas is None:
            self.started_at = time.monotonic()
            self._deltas = self._produce(self)
        try:
            delta = next(self._deltas)
        except StopIteration:
            if self.finished_s is None and self.started_at is not None:
                self.finished_s = time.monotonic() - self.started_at
            raise
        if self.first_delta_s is None and self.started_at is not None:
            self.first_delta_s = time.monotonic() - self.started_at
        return delta

    def close(self) -> None:
        deltas = self._deltas
        if deltas is not None and hasattr(deltas, "close"):
            deltas.close()

    def __enter__(self) -> TextStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LLMBackend(Protocol):
    """A chat model that streams text.

    ``tokens_exact`` says whether ``count_tokens`` uses the model's own tokenizer (true) or an
    estimate (false). ``context_window`` is the model's limit on prompt plus completion tokens,
    or ``None`` when it is not known locally. Reading either may load the model or tokenizer.
    Not ``runtime_checkable`` on purpose: ``isinstance`` would read the properties and load the model.
    """

    name: str
    model: str

    @property
    def tokens_exact(self) -> bool: ...

    @property
    def context_window(self) -> int | None: ...

    def count_tokens(self, text: str) -> int: ...

    def count_chat_tokens(self, messages: Sequence[ChatMessage]) -> int: ...

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> TextStream: ...
