"""``manage.py demo_site [--port 8001]``: serve the demo host page (a stand-in for a customer's
website, on another origin) that embeds the Lumen demo widget."""

from __future__ import annotations

import http.server
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.organizations.models import Widget

PAGE = Path(settings.REPO_DIR) / "demo" / "site" / "index.html"


def demo_page(*, widget_key: str, resolvo_url: str) -> bytes:
    return (
        PAGE.read_text(encoding="utf-8")
        .replace("{{WIDGET_KEY}}", widget_key)
        .replace("{{RESOLVO_URL}}", resolvo_url.rstrip("/"))
        .encode()
    )


class Command(BaseCommand):
    help = "Serve the demo host page that embeds the demo organization's chat widget."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.DEMO_SITE_PORT)
        parser.add_argument("--resolvo-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **opts: Any) -> None:
        widget = Widget.objects.filter(organization__slug="lumen", active=True).order_by("pk").first()
        if widget is None:
            raise CommandError("No demo widget: run `manage.py demo` first.")
        body = demo_page(widget_key=widget.public_key, resolvo_url=opts["resolvo_url"])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path in ("/", "/index.html") else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body if self.path in ("/", "/index.html") else b"Not found")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", opts["port"]), Handler)
        self.stdout.write(f"Demo help centre (another origin) on http://127.0.0.1:{opts['port']}/")
        server.serve_forever()
