"""A real HTTP server on 127.0.0.1 for URL and sitemap ingestion tests (HTTPS when given a TLS context)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Site:
    base: str
    routes: dict[str, Route]
    hits: list[str]
    request_headers: list[dict[str, str]] = field(default_factory=list)  # one per hit, same order

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def serve(
    routes: dict[str, Route] | Callable[[str], dict[str, Route]], *, tls: ssl.SSLContext | None = None
) -> Iterator[Site]:
    hits: list[str] = []
    request_headers: list[dict[str, str]] = []
    table: dict[str, Route] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request_headers.append({k.lower(): v for k, v in self.headers.items()})
            hits.append(self.path)
            route = table.get(self.path)
            if route is None:
                self.send_response(404)
                self.end_headers()
                return
            if route.delay:
                time.sleep(route.delay)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for k, v in route.headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    base = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    table.update(routes(base) if callable(routes) else routes)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Site(base, table, hits, request_headers)
    finally:
        server.shutdown()
        server.server_close()
