"""The dashboard's live streams over a real socket (uvicorn in process): what an agent sees
happen without reloading."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import ORIGIN, asgi_server
from tests.dashboard.conftest import Desk

__all__ = ["asgi_server"]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _listen(client: httpx.Client, url: str, want: int, into: list[tuple[str, str]], opened: threading.Event) -> None:
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("retry:"):
                opened.set()
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                into.append((name, line[6:]))
                if len(into) >= want:
                    return


def test_the_ticket_page_hears_the_customer_type_and_write(asgi_server: str, desk: Desk, settings: Any) -> None:
    from resolvo.organizations.models import Widget

    settings.API_EVENTS_KEEPALIVE_SECONDS = 30
    widget = Widget.objects.create(organization=desk.kb.organization, allowed_origins=ORIGIN)
    widget.knowledge_bases.set([desk.kb])
    customer = httpx.Client(base_url=asgi_server, headers={"Origin": ORIGIN}, timeout=30)
    token = customer.post("/api/widget/v1/boot", json={"key": widget.public_key}).json()["visitor_token"]
    customer.headers["Authorization"] = f"Bearer {token}"
    cid = customer.post("/api/widget/v1/conversations").json()["id"]
    assert customer.post(f"/api/widget/v1/conversations/{cid}/handoff").status_code == 200
    from resolvo.tickets.models import Ticket

    ticket = Ticket.objects.get(conversation_id=cid)
    agent = httpx.Client(
        base_url=asgi_server, timeout=30, cookies={"sessionid": desk.client.cookies["sessionid"].value}
    )
    seen: list[tuple[str, str]] = []
    opened = threading.Event()
    reader = threading.Thread(
        target=_listen, args=(agent, f"/app/tickets/{ticket.pk}/live/", 2, seen, opened), daemon=True
    )
    reader.start()
    assert opened.wait(10)
    time.sleep(0.3)
    assert customer.post(f"/api/widget/v1/conversations/{cid}/typing").status_code == 204
    time.sleep(0.3)
    sent = customer.post(
        f"/api/widget/v1/conversations/{cid}/messages", json={"text": "Still there?"}, headers={"Idempotency-Key": "k"}
    )
    assert sent.status_code == 200
    reader.join(10)
    assert [name for name, _ in seen] == ["typing", "thread"], seen
    assert "The customer" in seen[0][1]


def test_another_organizations_ticket_stream_answers_404(asgi_server: str, desk: Desk, other_desk: Desk) -> None:
    theirs = other_desk.handoff("private")
    agent = httpx.Client(
        base_url=asgi_server, timeout=10, cookies={"sessionid": desk.client.cookies["sessionid"].value}
    )
    assert agent.get(f"/app/tickets/{theirs.pk}/live/").status_code == 404
    assert httpx.get(f"{asgi_server}/app/tickets/{theirs.pk}/live/", timeout=10).status_code == 403
