"""One error body for every refusal of the REST API, whatever raised it::

    {"error": {"code": "not_found", "message": "No ticket 12.", "details": [...]}}

``code`` is stable and machine-readable (one per status, see :data:`CODES`); ``message`` is a
sentence for a person; ``details`` only on validation errors (where in the request, and what).
Installed on the v1 API only: the widget API keeps its own ``{"detail": ...}`` bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from resolvo.conversations.selectors import ConversationNotFound
from resolvo.conversations.services import InvalidTransition, MessageRejected
from resolvo.knowledge.selectors import DocumentNotFound, KnowledgeBaseNotFound
from resolvo.organizations.services import ApiTokenRefused
from resolvo.tickets.selectors import ContactNotFound, TicketNotFound
from resolvo.tickets.services import TicketRefused

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
}

NOT_FOUND = (TicketNotFound, ContactNotFound, ConversationNotFound, KnowledgeBaseNotFound, DocumentNotFound)
"""The selectors' "no such thing in your organization": 404, the same for another tenant's ids."""


class ApiError(HttpError):
    """A refusal with a status, a sentence, and optionally its own code and headers."""

    def __init__(self, status: int, message: str, *, code: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


def error_body(status: int, message: str, *, code: str = "", details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code or CODES.get(status, "error"), "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(status: int, message: str, **kwargs: Any) -> JsonResponse:
    """The error body outside a NinjaAPI operation (the API's catch-all 404)."""
    return JsonResponse(error_body(status, message, **kwargs), status=status)


def _details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where and what, never the offending input (it may be huge, binary, or someone's secret)."""
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))[:300], "type": e.get("type")}
        for e in errors[:50]
    ]


def _summary(details: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(d['loc']) or 'request'}: {d['msg']}" for d in details[:5]]
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return "The request is not valid. " + "; ".join(parts) + more


def install(api: NinjaAPI) -> None:
    """Replace ninja's default handlers on ``api`` with ones that answer :func:`error_body`."""

    def respond(request: HttpRequest, status: int, message: str, **kwargs: Any) -> HttpResponse:
        headers = kwargs.pop("headers", None) or {}
        response = api.create_response(request, error_body(status, message, **kwargs), status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    def http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        assert isinstance(exc, HttpError)
        if isinstance(exc, AuthenticationError):
            return respond(
                request,
                401,
                "Missing, unknown or revoked API token: send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="resolvo"'},
            )
        if isinstance(exc, ApiError):
            return respond(request, exc.status_code, exc.message, code=exc.code, headers=exc.headers)
        message = exc.message
        if exc.status_code == 400 and message.startswith("Cannot parse request body"):
            message = "The request body is not valid JSON."
        return respond(request, exc.status_code, message)

    def validation_error(request: HttpRequest, exc: Any) -> HttpResponse:
        assert isinstance(exc, ValidationError)
        details = _details(exc.errors)
        return respond(request, 422, _summary(details), details=details)

    def not_found(request: HttpRequest, exc: Any) -> HttpResponse:
        message = str(exc) if isinstance(exc, NOT_FOUND) else "Not found."
        return respond(request, 404, message)

    def refused(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 422, str(exc), code="refused")

    def conflict(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 409, str(exc))

    def forbidden(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 403, str(exc))

    def too_big(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 413, "The request body is too large.")

    def suspicious(request: HttpRequest, exc: Any) -> HttpResponse:
        return respond(request, 400, "The request was refused as malformed.")

    def unexpected(request: HttpRequest, exc: Any) -> HttpResponse:
        log.error("Unhandled error in the REST API: %s %s", request.method, request.path, exc_info=exc)
        return respond(request, 500, "Something went wrong on our side; it has been logged.")

    api.add_exception_handler(Exception, unexpected)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(ValidationError, validation_error)
    api.add_exception_handler(Http404, not_found)
    for cls in NOT_FOUND:
        api.add_exception_handler(cls, not_found)
    api.add_exception_handler(TicketRefused, refused)
    api.add_exception_handler(MessageRejected, refused)
    api.add_exception_handler(InvalidTransition, conflict)
    api.add_exception_handler(ApiTokenRefused, forbidden)
    api.add_exception_handler(RequestDataTooBig, too_big)
    api.add_exception_handler(SuspiciousOperation, suspicious)
