"""Rate limits for the public API, with the ``limits`` library: a moving window per visitor, per
client IP and per organization, stored in Redis in production and in process memory when embedded.
A refusal carries the seconds until the window has room again (sent as ``Retry-After``)."""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings
from limits import parse, storage, strategies

_lock = threading.Lock()
_limiter: strategies.MovingWindowRateLimiter | None = None


class RateLimited(Exception):
    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"Too many requests ({scope}); try again in {retry_after} s.")
        self.retry_after = retry_after


def _get() -> strategies.MovingWindowRateLimiter:
    global _limiter
    with _lock:
        if _limiter is None:
            uri = settings.REDIS_URL or "memory://"
            _limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(uri))
        return _limiter


def check(**scopes: str) -> None:
    """``check(visitor=..., ip=..., organization=...)``: count one request against each scope's
    limit (``API_RATE_<SCOPE>`` settings, e.g. "20/minute"); RateLimited when one is spent."""
    limiter = _get()
    for scope, identity in scopes.items():
        rate = parse(settings.API_RATE_LIMITS[scope])
        if not limiter.hit(rate, "widget", scope, identity):
            reset = limiter.get_window_stats(rate, "widget", scope, identity).reset_time
            raise RateLimited(max(1, math.ceil(reset - time.time())), scope)


def reset() -> None:
    """Forget the limiter (tests switch storage and limits)."""
    global _limiter
    with _lock:
        if _limiter is not None:
            _limiter.storage.reset()
        _limiter = None
