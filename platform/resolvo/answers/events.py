"""The answer-event contract: what the engine streams, the SSE framing sends and clients read.

One answer is, in order: ``sources`` (the passages retrieved), any number of ``token`` (text
deltas of the draft), ``citations`` (verified), then ``done``; or ``error`` in place of
everything after ``sources`` (or of everything, for an unusable question).

``done.answer`` is the final text. ``done.replaced`` says plainly whether it differs from the
streamed draft (verification replaced the draft with quoted passage sentences, or with the
abstention message): a client shows the draft while it streams and, when ``replaced`` is true,
swaps in ``done.answer``; when it is false, the streamed text already is the answer.

Payloads are typed here and only here; the engine builds events through the constructors below,
and ``tests/answers/snapshots/events.schema.json`` fixes their shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict, Union, cast, get_args, get_origin, get_type_hints

EventType = Literal["sources", "token", "citations", "done", "error"]


class Source(TypedDict):
    n: int
    """The passage number the answer's ``[n]`` markers refer to."""
    chunk_id: str
    source: str
    title: str
    section: str
    url: str
    score: float
    similarity: float
    snippet: str


class Citation(TypedDict):
    n: int
    source: str
    title: str
    section: str
    url: str
    inferred: bool
    """True when the answer did not mark the passage itself and verification attributed it."""


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class SourcesData(TypedDict):
    sources: list[Source]


class TokenData(TypedDict):
    text: str


class CitationsData(TypedDict):
    citations: list[Citation]
    dropped: list[int]
    """Passage numbers the draft cited that verification did not support."""


Outcome = Literal["answered", "quoted", "abstained", "clarified"]


class DoneData(TypedDict):
    outcome: Outcome
    """answered (the model's verified text), quoted (passage sentences), abstained (the docs don't
    cover it: offer a person), clarified (the question was ambiguous: ``answer`` asks which one)."""
    language: str
    """The language of ``answer`` and of the fixed messages (ISO 639-1)."""
    abstained: bool
    reason: str
    """Why the answer is what it is: "" (answered), "quoted", or the abstention's reason."""
    answer: str
    replaced: bool
    """True when ``answer`` differs from the streamed tokens; show ``answer`` then."""
    usage: Usage
    timings: dict[str, float]
    backend: str
    model: str
    trace_id: NotRequired[int]
    message_id: NotRequired[int | None]
    """In a conversation: the saved assistant message (None when a person took over meanwhile)."""


class ErrorData(TypedDict):
    message: str
    """For the customer, in plain words."""
    handoff: bool
    """True when a person should take over (the model is unavailable)."""
    trace_id: NotRequired[int]


Payload = SourcesData | TokenData | CitationsData | DoneData | ErrorData

PAYLOADS: dict[EventType, type] = {
    "sources": SourcesData,
    "token": TokenData,
    "citations": CitationsData,
    "done": DoneData,
    "error": ErrorData,
}


@dataclass(frozen=True)
class Event:
    type: EventType
    data: Payload

    def as_citations(self) -> CitationsData:
        assert self.type == "citations"
        return cast(CitationsData, self.data)

    def as_done(self) -> DoneData:
        assert self.type == "done"
        return cast(DoneData, self.data)

    def as_error(self) -> ErrorData:
        assert self.type == "error"
        return cast(ErrorData, self.data)


def sources(items: list[Source]) -> Event:
    return Event("sources", SourcesData(sources=items))


def token(text: str) -> Event:
    return Event("token", TokenData(text=text))


def citations(items: list[Citation], dropped: list[int]) -> Event:
    return Event("citations", CitationsData(citations=items, dropped=dropped))


def done(data: DoneData) -> Event:
    return Event("done", data)


def error(message: str, *, handoff: bool) -> Event:
    return Event("error", ErrorData(message=message, handoff=handoff))


def schema() -> dict[str, dict[str, str]]:
    """Each event's fields and their types, as text: the contract in a comparable form."""

    def name(tp: object) -> str:
        origin = get_origin(tp)
        if origin is NotRequired:
            return name(get_args(tp)[0]) + " (optional)"
        if origin is Literal:
            return "Literal[" + ", ".join(str(a) for a in get_args(tp)) + "]"
        if origin in (list, dict, Union):
            return f"{getattr(origin, '__name__', 'Union')}[{', '.join(name(a) for a in get_args(tp))}]"
        if isinstance(tp, type) and hasattr(tp, "__annotations__") and issubclass(tp, dict):
            return "{" + ", ".join(f"{k}: {v}" for k, v in _fields(tp).items()) + "}"
        return getattr(tp, "__name__", str(tp))

    def _fields(td: type) -> dict[str, str]:
        hints = get_type_hints(td, include_extras=True)
        return {key: name(tp) for key, tp in hints.items()}

    return {event: _fields(payload) for event, payload in PAYLOADS.items()}
