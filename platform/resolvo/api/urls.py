"""The versioned public API. ``/api/widget/v1/`` for the chat widget; its OpenAPI schema is at
``/api/widget/v1/openapi.json`` and the interactive docs at ``/api/widget/v1/docs``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from resolvo.api.widget import RateLimitedError, rate_limited_response, router

widget_api = NinjaAPI(
    title="Resolvo widget API",
    version="1",
    urls_namespace="widget-v1",
    description="What the embeddable chat widget calls. Authenticated by a signed visitor token; "
    "accepted only from the widget's allowed origins.",
)
widget_api.add_router("/", router)


@widget_api.exception_handler(RateLimitedError)
def _rate_limited(request: HttpRequest, exc: Any) -> HttpResponse:
    return rate_limited_response(request, exc, widget_api)
