"""Browser tests: Debian's Chromium driven by Playwright for Python, a host page on one origin
embedding the widget served by the platform (uvicorn, in-process) on another.

They run in their own pytest invocation (``./resolvo test`` does both): sync Playwright keeps an
event loop running on the main thread, so the ORM calls the tests make would be refused as
"async-unsafe" without Django's documented escape hatch, set here for this invocation only."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.answers.conftest import answer_settings, lumen_kb
from tests.api.conftest import asgi_server

__all__ = ["answer_settings", "asgi_server", "lumen_kb"]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Only for the browser tests (autouse here reaches this folder's tests alone, and they run
    in their own invocation): the ORM calls they and the database set-up make run on the main
    thread, where sync Playwright keeps an event loop."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def host_page(asgi_server: str, lumen_kb: Any) -> Iterator[tuple[str, Any]]:
    """(URL of a customer's page on another origin that embeds the demo widget, the widget)."""
    from resolvo.organizations.management.commands.demo_site import demo_page
    from resolvo.organizations.models import Widget

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    origin = f"http://127.0.0.1:{port}"
    widget = Widget.objects.create(
        organization=lumen_kb.organization, allowed_origins=origin, greeting="Hi! Ask me about your Lumen Hub."
    )
    widget.knowledge_bases.set([lumen_kb])
    body = demo_page(widget_key=widget.public_key, resolvo_url=asgi_server)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{origin}/", widget
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (./resolvo test installs it)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
