"""Serving the widget's JavaScript bundle at ``/widget/v1/resolvo.js`` (built from ``widget/``
by the install step)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def widget_bundle(request: HttpRequest) -> HttpResponse:
    path = settings.WIDGET_BUNDLE
    if not path.is_file():
        return HttpResponse(
            "/* The widget bundle is not built: run `npm ci && npm run build` in widget/ (./resolvo does). */",
            status=404,
            content_type="application/javascript",
        )
    # Read whole (about 60 KB): under ASGI a file iterator would be consumed synchronously anyway.
    response = HttpResponse(path.read_bytes(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"  # a public script; the API checks origins itself
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
