"""Server-sent events framing for the answer stream (text/event-stream)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from resolvo.answers.events import Event


def frame(event: str, data: object, *, id: int | None = None) -> str:
    """One SSE frame: an ``id:`` line when given, the ``event:`` line, one ``data:`` line of
    compact JSON, a blank line. Every stream of the platform frames its events here."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {payload}\n\n"


def encode(event: Event) -> str:
    """An answer event as a frame (the payloads are those of :mod:`resolvo.answers.events`)."""
    return frame(event.type, event.data)


def frames(events: Iterable[Event]) -> Iterator[str]:
    for event in events:
        yield encode(event)
