"""Small real HTTP servers for the observability tests: an OpenAI-compatible LLM stub that records
the headers it was sent, and a port nothing listens on."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def closed_port() -> int:
    """A local port that was free a moment ago (nothing listens on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LLMStub:
    base: str  # the API root, with /v1
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers
    models_delay: float = 0.0


@contextmanager
def llm_stub(*, models_status: int = 200) -> Iterator[LLMStub]:
    """``GET /v1/models`` and a non-streamed ``POST /v1/chat/completions`` answer ("Hello.")."""
    stub = LLMStub(base="")

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            stub.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path == "/v1/models":
                time.sleep(stub.models_delay)
                self._send(models_status, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})
            elif self.path == "/readyz":  # a Qdrant server's readiness endpoint, for the same stub
                self._send(200, {"title": "all shards are ready"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            stub.requests.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
            self._send(
                200,
                {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2},
                },
            )

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
