from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path

from resolvo.api.bundle import widget_bundle
from resolvo.api.urls import widget_api
from resolvo.api.v1.api import urls as api_v1_urls
from resolvo.knowledge.views import section
from resolvo.observability.health import healthz, readyz
from resolvo.observability.metrics import metrics_view


def home(request: HttpRequest) -> HttpResponse:
    """What someone who opens the server's address sees: where to go from here."""
    demo = f"{request.scheme}://{request.get_host().rsplit(':', 1)[0]}:{settings.DEMO_SITE_PORT}/"
    return render(request, "home.html", {"demo_url": demo if settings.DEBUG else ""})


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("app/", include("resolvo.dashboard.urls")),
    path("api/widget/v1/", widget_api.urls),
    path("widget/v1/resolvo.js", widget_bundle, name="widget-bundle"),
    path("cited/<str:token>/", section, name="knowledge-section"),
    path("api/v1/", api_v1_urls()),
    # Also answered by observability.health.ProbeMiddleware ahead of host checks; here for reverse().
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
