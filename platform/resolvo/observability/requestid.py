"""The request id: one value that follows a question from the widget to the LLM server.

It is taken from the client's or load balancer's ``X-Request-ID`` (when it is a sane token) or
made here, kept in a context variable for the request's duration, returned as a response header,
added to every log record (``resolvo.observability.logs``), carried in Celery task headers
(``resolvo.observability.celery_signals``) and sent to the LLM server
(``resolvo.answers.llm.openai_backend``). Plain Python: no Django import.

Context variables follow ``sync_to_async`` and asyncio tasks, but not work submitted to a plain
``ThreadPoolExecutor``: submit ``contextvars.copy_context().run`` there (``api/streaming.py``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# A client's id is kept only when it is a short token: it goes into log lines and headers.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")

_current: ContextVar[str] = ContextVar("resolvo_request_id", default="")


def get_request_id() -> str:
    """The current request id, or ``""`` outside any request or task."""
    return _current.get()


def set_request_id(value: str) -> Token[str]:
    return _current.set(value)


def reset_request_id(token: Token[str]) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(raw: str | None) -> str:
    """The client's id when it is acceptable, else a new one."""
    if raw and _ACCEPTABLE.fullmatch(raw.strip()):
        return raw.strip()
    return new_request_id()


def request_id_headers() -> dict[str, str]:
    """``{"X-Request-ID": id}`` for an outgoing HTTP call, or nothing outside a request."""
    value = get_request_id()
    return {HEADER: value} if value else {}


class RequestIdMiddleware:
    """Sets the request id for the request (``request.request_id`` too) and returns it as a header.

    Sync and async capable. Under ASGI each request runs in an asyncio task of its own, so a
    streamed response keeps the id while its body is sent (the frames' logs carry it); the
    previous value is restored for responses that are complete when the view returns.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        value = accept_request_id(request.META.get(META_KEY))
        request.request_id = value
        token = _current.set(value)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = value
        return response

    async def _acall(self, request: Any) -> Any:
        value = accept_request_id(request.META.get(META_KEY))
        request.request_id = value
        token = _current.set(value)
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        try:
            response = await get_response(request)
        except BaseException:
            _current.reset(token)
            raise
        if not getattr(response, "streaming", False):
            _current.reset(token)
        response[HEADER] = value
        return response
