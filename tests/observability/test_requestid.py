"""The request id: echoed or made, in JSON log lines, carried into Celery tasks (eager and through
a real worker) and sent to the LLM server."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from resolvo.answers.llm.base import ChatMessage, GenerationParams
from resolvo.answers.llm.openai_backend import OpenAIBackend
from resolvo.observability.logs import JsonFormatter, RequestIdFilter
from resolvo.observability.requestid import get_request_id, reset_request_id, set_request_id
from tests.observability.stubs import llm_stub
from workers.celery import app

log = logging.getLogger("tests.observability")


@app.task(name="tests.observability.echo_request_id")
def echo_request_id() -> str:
    log.warning("task ran")
    return get_request_id()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Log records as the production handler writes them (JSON formatter, request id filter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_the_clients_request_id_is_echoed(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response["X-Request-ID"] == "lb-7f3a.42"


def test_a_request_id_is_made_when_absent_or_unusable(client: Client) -> None:
    made = client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz")["X-Request-ID"] != made
    for bad in ("x" * 300, "two words", "line\nbreak", '{"json": 1}'):
        replaced = client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), bad


def test_the_request_id_is_echoed_under_asgi() -> None:
    response = async_to_sync(AsyncClient().get)("/healthz", headers={"X-Request-ID": "asgi-1"})
    assert response["X-Request-ID"] == "asgi-1"


@pytest.mark.django_db
def test_log_lines_are_json_with_the_request_id(client: Client, json_lines: io.StringIO) -> None:
    client.get("/no/such/page", HTTP_X_REQUEST_ID="req-log-1")
    lines = records(json_lines)
    not_found = [r for r in lines if r["logger"] == "django.request"]
    assert not_found, lines
    assert not_found[0]["request_id"] == "req-log-1"
    assert not_found[0]["level"] == "WARNING"
    assert {"time", "message", "process", "status_code"} <= set(not_found[0])
    access = [r for r in lines if r["logger"] == "resolvo.access"]
    assert access and access[0]["request_id"] == "req-log-1"
    assert access[0]["status"] == 404 and access[0]["route"] == "<unmatched>" and access[0]["duration_ms"] >= 0


def test_production_logging_is_configured_as_json(settings: Any) -> None:
    assert not settings.DEBUG and settings.LOG_FORMAT == "json"
    console = settings.LOGGING["handlers"]["console"]
    assert settings.LOGGING["formatters"][console["formatter"]]["()"].endswith("JsonFormatter")
    assert console["filters"] == ["request_id"]
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False


def test_text_logs_carry_the_request_id_too() -> None:
    from resolvo.observability.logs import TEXT_FORMAT

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    token = set_request_id("txt-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        reset_request_id(token)
    assert logging.Formatter(TEXT_FORMAT).format(record).endswith("x [txt-1] hello")


def test_an_eager_task_runs_under_the_callers_request_id(json_lines: io.StringIO) -> None:
    token = set_request_id("req-eager-1")
    try:
        result = echo_request_id.apply()
    finally:
        reset_request_id(token)
    assert result.get() == "req-eager-1"
    assert any(r["message"] == "task ran" and r["request_id"] == "req-eager-1" for r in records(json_lines))


@pytest.mark.slow
def test_a_real_worker_restores_the_request_id_from_the_task_headers(
    celery_worker: Any, json_lines: io.StringIO
) -> None:
    token = set_request_id("req-upload-9")
    try:
        result = echo_request_id.apply_async(queue="ingest")
    finally:
        reset_request_id(token)
    assert result.get(timeout=30) == "req-upload-9"
    ran = [r for r in records(json_lines) if r["message"] == "task ran"]
    assert ran and ran[-1]["request_id"] == "req-upload-9"
    # A task sent outside any request runs under its own task id.
    orphan = echo_request_id.apply_async(queue="ingest")
    assert orphan.get(timeout=30) == orphan.id


def test_the_llm_server_receives_the_request_id() -> None:
    with llm_stub() as stub:
        backend = OpenAIBackend("stub-model", base_url=stub.base, max_retries=0)
        token = set_request_id("req-llm-5")
        try:
            text = "".join(backend.stream([ChatMessage("user", "hi")], GenerationParams(max_tokens=8, timeout_s=5)))
        finally:
            reset_request_id(token)
        backend.close()
    assert text == "Hello."
    posts = [h for m, p, h in stub.requests if m == "POST"]
    assert posts and posts[0]["x-request-id"] == "req-llm-5"


def test_the_request_id_reaches_the_streaming_engine_thread() -> None:
    from resolvo.api.streaming import frames_from_thread

    def produce() -> Iterator[str]:
        yield get_request_id()

    async def collect() -> list[str]:
        token = set_request_id("req-stream-3")
        try:
            return [frame async for frame in frames_from_thread(produce)]
        finally:
            reset_request_id(token)

    assert async_to_sync(collect)() == ["req-stream-3"]
