import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "resolvo.organizations"
    label = "organizations"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        check_request_enabled.connect(_cors_for_widget_origins, dispatch_uid="resolvo-widget-cors")


_ORIGIN_TTL_SECONDS = 15.0
_origins: dict[str, tuple[bool, float]] = {}
_lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cors-origins")


def _cors_for_widget_origins(sender: Any, request: Any, **kwargs: Any) -> bool:
    """CORS for the widget API: an origin that some active widget allows (the API then checks the
    request's own widget on every call). Preflights carry no key, so this cannot be narrower.

    django-cors-headers calls this from async code under ASGI, where the ORM may not run: the
    lookup runs on a thread of its own and is remembered for a few seconds per origin."""
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith("/api/widget/"):
        return False
    now = time.monotonic()
    cached = _origins.get(origin)
    if cached is not None and now - cached[1] < _ORIGIN_TTL_SECONDS:
        return cached[0]
    allowed = _lookups.submit(_lookup, origin).result(timeout=10)
    _origins[origin] = (allowed, now)
    return allowed


def _lookup(origin: str) -> bool:
    from django.db import connection

    from resolvo.organizations.selectors import origin_allowed_anywhere

    try:
        return origin_allowed_anywhere(origin=origin)
    finally:
        connection.close()
