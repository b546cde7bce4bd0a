"""A demo widget over the demo help centre, clients that speak from an allowed origin, and an
in-process ASGI server on a real loopback socket (pytest-django's live_server is WSGI and would
buffer the streams)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.answers.conftest import answer_settings, lumen_kb

__all__ = ["answer_settings", "lumen_kb"]

ORIGIN = "https://shop.example"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> Iterator[None]:
    from resolvo.api import ratelimit
    from resolvo.organizations import apps

    ratelimit.reset()
    apps._origins.clear()
    yield
    ratelimit.reset()
    apps._origins.clear()


@pytest.fixture
def widget(lumen_kb: Any) -> Any:
    from resolvo.organizations.models import Widget

    w = Widget.objects.create(organization=lumen_kb.organization, allowed_origins=f"{ORIGIN}\nhttp://127.0.0.1:9")
    w.knowledge_bases.set([lumen_kb])
    return w


class WidgetClient:
    """The widget's calls, from an allowed origin, with the visitor token once booted."""

    def __init__(self, key: str, origin: str = ORIGIN) -> None:
        self.client = Client(HTTP_ORIGIN=origin)
        self.key = key
        self.token = ""

    def boot(self, **extra: Any) -> Any:
        response = self.client.post(
            "/api/widget/v1/boot",
            {"key": self.key, "visitor_token": self.token or None, **extra},
            content_type="application/json",
        )
        if response.status_code == 200:
            self.token = response.json()["visitor_token"]
        return response

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.post(
            f"/api/widget/v1{path}",
            body if body is not None else {},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
            **headers,
        )

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/widget/v1{path}", HTTP_AUTHORIZATION=f"Bearer {self.token}")


@pytest.fixture
def visitor(widget: Any) -> WidgetClient:
    client = WidgetClient(widget.public_key)
    assert client.boot().status_code == 200
    return client


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[str]:
    """uvicorn serving the project's ASGI application on a pre-bound loopback socket."""
    import uvicorn

    from resolvo.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()
