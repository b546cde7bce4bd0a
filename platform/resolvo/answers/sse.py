"""Server-sent events framing for the answer stream (text/event-stream)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from resolvo.answers.events import Event


def encode(event: Event) -> str:
    """One SSE frame: ``event:`` line, one ``data:`` line of compact JSON, blank line (the
    payloads are those of :mod:`resolvo.answers.events`)."""
    payload = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.type}\ndata: {payload}\n\n"


def frames(events: Iterable[Event]) -> Iterator[str]:
    for event in events:
        yield encode(event)
