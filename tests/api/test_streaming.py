"""The answer stream end to end over a real socket, against uvicorn serving the project's ASGI
application in-process: events arrive as they happen (the first token well before the end), in
the protocol's order, and a client that goes away stops generation."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from resolvo.answers.models import AnswerTrace
from resolvo.conversations.models import Message
from tests.api.conftest import ORIGIN

pytestmark = pytest.mark.slow


def _visitor(base: str, widget: Any) -> tuple[httpx.Client, int]:
    client = httpx.Client(base_url=base, headers={"Origin": ORIGIN}, timeout=120)
    token = client.post("/api/widget/v1/boot", json={"key": widget.public_key}).json()["visitor_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    conversation = client.post("/api/widget/v1/conversations").json()["id"]
    return client, conversation


def _events(lines: Any) -> Any:
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, time.monotonic()
            name = None


def test_events_stream_as_they_happen_in_order(asgi_server: str, widget: Any, answer_settings: Any) -> None:
    answer_settings.ANSWER_MAX_TOKENS = 60
    client, conversation = _visitor(asgi_server, widget)
    started = time.monotonic()
    with client.stream(
        "POST",
        f"/api/widget/v1/conversations/{conversation}/messages",
        json={"text": "What does a blinking amber hub light mean?"},
        headers={"Idempotency-Key": "s1"},
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        seen = list(_events(response.iter_lines()))
    names = [n for n, _ in seen]
    assert names[:2] == ["message", "sources"] and names[-2:] == ["citations", "done"]
    tokens = [t for n, t in seen if n == "token"]
    assert len(tokens) >= 1, names  # verified sentences, or a quote, or the abstention
    sources_at, done_at = next(t for n, t in seen if n == "sources"), seen[-1][1]
    # Streamed, not buffered: the sources arrived well before the answer was complete (the
    # answer's own text comes a verified sentence at a time, so it may all come at the end).
    assert done_at - sources_at > 0.3, (sources_at - started, done_at - started)


def test_a_client_that_goes_away_stops_generation(asgi_server: str, widget: Any, answer_settings: Any) -> None:
    answer_settings.ANSWER_MAX_TOKENS = 200
    client, conversation = _visitor(asgi_server, widget)
    with client.stream(
        "POST",
        f"/api/widget/v1/conversations/{conversation}/messages",
        json={"text": "How do I connect the hub to Wi-Fi on Android?"},
        headers={"Idempotency-Key": "s2"},
    ) as response:
        for name, _ in _events(response.iter_lines()):
            if name == "sources":
                break  # leave mid-answer: the model is generating now
    deadline = time.monotonic() + 60
    trace = None
    while time.monotonic() < deadline:
        trace = AnswerTrace.objects.filter(error="stream abandoned by the client").first()
        if trace is not None:
            break
        time.sleep(0.2)
    assert trace is not None, "the abandoned answer was not stopped"
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_an_open_events_stream_hears_agent_replies_and_typing_at_once(
    asgi_server: str, widget: Any, settings: Any, django_user_model: Any
) -> None:
    """The stream wakes on live notes (Redis pub/sub here), not on a timer: with a 30-second
    keep-alive, an agent's typing and reply still arrive within a second or two."""
    import threading

    from resolvo.conversations import services
    from resolvo.conversations.models import Conversation

    settings.API_EVENTS_KEEPALIVE_SECONDS = 30
    settings.API_EVENTS_STREAM_SECONDS = 20
    client, cid = _visitor(asgi_server, widget)
    conversation = Conversation.objects.get(pk=cid)
    agent = django_user_model.objects.create_user("sam", password="x")
    services.conversation_handoff(conversation=conversation, trigger="customer_asked")
    last = conversation.events.order_by("-seq").first().seq  # type: ignore[union-attr]

    arrived: list[tuple[str, str, float]] = []
    opened = threading.Event()

    def listen() -> None:
        with client.stream("GET", f"/api/widget/v1/conversations/{cid}/events?after={last}") as response:
            name = None
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    opened.set()
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    arrived.append((name, line[6:], time.monotonic()))
                    if name == "message":
                        return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10)
    time.sleep(0.3)  # the stream subscribes right after its first frame
    typed = time.monotonic()
    services.conversation_typing(conversation=conversation, role="agent", name="Sam")
    time.sleep(0.5)
    replied = time.monotonic()
    services.conversation_agent_reply(conversation=conversation, agent=agent, text="Hi, Sam here.")
    reader.join(15)
    names = [n for n, _, _ in arrived]
    assert names == ["typing", "status", "message"], arrived
    assert arrived[0][2] - typed < 2 and '"role":"agent"' in arrived[0][1]
    assert arrived[2][2] - replied < 2 and "Sam here" in arrived[2][1]
