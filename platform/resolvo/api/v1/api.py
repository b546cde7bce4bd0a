"""The v1 NinjaAPI: its routers, error handlers and URLs (mounted at ``/api/v1/``).

The OpenAPI schema is at ``/api/v1/openapi.json``, the interactive docs at ``/api/v1/docs``.
Anything else under ``/api/v1/`` that is not an endpoint answers the API's 404 body, not an
HTML page.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from resolvo.api.v1 import account, contacts, conversations, errors, knowledge, tickets
from resolvo.api.v1.auth import TokenAuth

api = NinjaAPI(
    title="Resolvo REST API",
    version="1",
    urls_namespace="api-v1",
    docs_url="/docs",
    auth=TokenAuth(),
    description=(
        "Tickets, messages, notes, contacts, conversations, knowledge bases and documents, for "
        "agents' tools and integrations. Authenticate with a personal API token: "
        "`Authorization: Bearer rsv_...`; it acts with its member's role in its member's "
        "organization. Lists are cursor-paginated (`?limit=`, `?cursor=`; `{items, next_cursor}`); "
        'errors answer `{"error": {"code", "message"}}`. See docs/api.md.'
    ),
)
errors.install(api)
for module in (account, tickets, contacts, conversations, knowledge):
    api.add_router("/", module.router)


@csrf_exempt  # a token-authenticated API: no cookies, so nothing for CSRF to protect
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return errors.error_response(404, "No such endpoint: see /api/v1/docs for the ones there are.")


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URLs and a JSON 404 for the rest of ``/api/v1/``, for ``path("api/v1/", ...)``."""
    patterns, app_name, namespace = api.urls
    return [*patterns, re_path(r"^(?P<rest>.*)$", not_found)], app_name, namespace


__all__ = ["api", "urls"]
