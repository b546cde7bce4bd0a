"""Liveness (``/healthz``) and readiness (``/readyz``) probes.

``/healthz`` says the process serves requests and touches nothing else. ``/readyz`` checks each
dependency this process needs, all at once on a small thread pool, each bounded by
``HEALTH_CHECK_TIMEOUT`` seconds so a probe never hangs: every configured database, the broker
(Redis, when ``REDIS_URL`` is set), the vector store (the Qdrant server's own ``/readyz``, or the
embedded store's folder) and the LLM (``GET {LLM_BASE_URL}/models``; for the in-process backend,
the model's files, without loading the model). 200 when all pass, 503 naming each failure and why.
Reasons are short and never include URLs or credentials.

:class:`ProbeMiddleware` answers these paths (and ``/metrics``) before host validation and the
HTTPS redirect, so a load balancer or kubelet probing by IP over plain HTTP gets an answer.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    error: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "latency_ms": self.latency_ms}
        if self.error:
            out["error"] = self.error
        if self.detail:
            out["detail"] = self.detail
        return out


class CheckFailed(Exception):
    """A dependency answered, but not as it should (the message is the reason shown)."""


def reason(exc: BaseException) -> str:
    """A short reason without URLs, credentials or hostnames' surroundings."""
    if isinstance(exc, CheckFailed):
        text = str(exc)
    elif isinstance(exc, httpx.TimeoutException | FutureTimeout | TimeoutError):
        return "timed out"
    elif isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        # psycopg: 'connection to server at "h", port 1 failed: Connection refused' -> the cause.
        text = f"{type(exc).__name__}: {first.rsplit('failed: ', 1)[-1]}" if first else type(exc).__name__
    return _URL_CREDENTIALS.sub(r"\1***@", text)[:200]


# --- the checks --------------------------------------------------------------------------------


def _database(alias: str) -> Callable[[float], str]:
    def check(timeout: float) -> str:
        connection = connections[alias]
        if connection.vendor == "postgresql" and not getattr(connection, "pool", None):
            # A connection of its own with libpq's connect timeout: a blackholed server address
            # must not hold a probe thread for the operating system's TCP timeout.
            params = {**connection.get_connection_params(), "connect_timeout": max(2, math.ceil(timeout))}
            raw = connection.Database.connect(**params)  # type: ignore[attr-defined]
            try:
                raw.execute("SELECT 1").fetchone()
            finally:
                raw.close()
            return ""
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connection.close()  # this pool thread's own connection; nothing reuses it
        return ""

    return check


def _broker(timeout: float) -> str:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return ""


def _vector_store(timeout: float) -> str:
    url = settings.QDRANT_URL
    if url.startswith(("http://", "https://")):
        headers = {"api-key": settings.QDRANT_API_KEY} if settings.QDRANT_API_KEY else {}
        response = httpx.get(f"{url.rstrip('/')}/readyz", headers=headers, timeout=timeout, follow_redirects=False)
        if response.status_code != 200:
            raise CheckFailed(f"Qdrant server answered HTTP {response.status_code}")
        return "server"
    if url:  # qdrant-client's local mode (local:PATH or :memory:), a development setting
        return "qdrant-client local mode"
    if importlib.util.find_spec("qdrant_edge") is None:
        raise CheckFailed("the embedded engine (qdrant-edge-py) is not installed")
    folder = Path(settings.QDRANT_PATH)
    existing = folder if folder.exists() else next((p for p in folder.parents if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CheckFailed("the embedded store's folder is not writable")
    return "embedded"


def _llm(timeout: float) -> str:
    if settings.LLM_BACKEND == "openai":
        headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"} if settings.LLM_API_KEY else {}
        base = settings.LLM_BASE_URL.rstrip("/")
        response = httpx.get(f"{base}/models", headers=headers, timeout=timeout, follow_redirects=False)
        if response.status_code != 200:
            raise CheckFailed(f"LLM server answered HTTP {response.status_code} to GET /models")
        return "openai-compatible server"
    return _local_model(settings.LLM_MODEL)


def _local_model(name: str) -> str:
    """The in-process model's files are present (it is loaded lazily, by the first answer)."""
    from resolvo.answers.llm.base import LLMUnavailable
    from resolvo.answers.llm.hf_loading import locate

    try:
        location = locate(name)
    except LLMUnavailable as exc:
        raise CheckFailed(str(exc)) from None
    if Path(location.path).expanduser().is_dir():
        return "model files present"
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(location.path, "config.json"), str):
        return "model in the local Hugging Face cache"
    raise CheckFailed(f"model {name!r} is neither a local folder nor in the local Hugging Face cache")


def readiness_checks() -> dict[str, Callable[[float], str]]:
    """The checks that apply to this configuration, by name. Each returns a detail or raises."""
    checks: dict[str, Callable[[float], str]] = {}
    for alias in connections:
        checks["database" if alias == "default" else f"database:{alias}"] = _database(alias)
    if settings.REDIS_URL:
        checks["broker"] = _broker
    checks["vector_store"] = _vector_store
    checks["llm"] = _llm
    return checks


def run_checks(checks: dict[str, Callable[[float], str]] | None = None) -> dict[str, CheckResult]:
    """Run every check concurrently; one that takes longer than the timeout is reported as such
    (its thread finishes in the background; the probe does not wait for it)."""
    checks = readiness_checks() if checks is None else checks
    timeout = settings.HEALTH_CHECK_TIMEOUT

    def timed(check: Callable[[float], str]) -> CheckResult:
        started = time.perf_counter()
        try:
            detail = check(timeout)
        except Exception as exc:
            return CheckResult(False, _ms(started), error=reason(exc))
        return CheckResult(True, _ms(started), detail=detail)

    started = time.perf_counter()
    futures = {name: _pool.submit(timed, check) for name, check in checks.items()}
    results: dict[str, CheckResult] = {}
    for name, future in futures.items():
        left = max(0.0, timeout + 0.25 - (time.perf_counter() - started))
        try:
            results[name] = future.result(timeout=left)
        except FutureTimeout:
            results[name] = CheckResult(False, _ms(started), error=f"timed out after {timeout:g} s")
    return results


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def readiness_response(results: dict[str, CheckResult]) -> HttpResponse:
    ok = all(r.ok for r in results.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
    if not ok:
        body["failing"] = sorted(name for name, r in results.items() if not r.ok)
    body["checks"] = {name: r.as_dict() for name, r in results.items()}
    return _no_store(JsonResponse(body, status=200 if ok else 503))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


# --- views ------------------------------------------------------------------------------------------


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. No dependency is touched."""
    return _no_store(JsonResponse({"status": "ok"}))


def readyz(request: HttpRequest) -> HttpResponse:
    return readiness_response(run_checks())


async def areadyz(request: HttpRequest) -> HttpResponse:
    results = await sync_to_async(run_checks, thread_sensitive=False)()
    return readiness_response(results)


class ProbeMiddleware:
    """Serves ``/healthz``, ``/readyz`` and ``/metrics`` ahead of the rest of the stack: no host
    validation (probes address the pod or container by IP), no HTTPS redirect, no session, CSRF
    or login. Sits after the request-id and metrics middleware, so probes are counted and logged."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        path = request.path_info
        if path == "/healthz":
            return _labelled(request, "healthz", healthz)
        if path == "/readyz":
            return _labelled(request, "readyz", readyz)
        if path == "/metrics":
            from resolvo.observability.metrics import metrics_view

            return _labelled(request, "metrics", metrics_view)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path == "/healthz":
            return _labelled(request, "healthz", healthz)
        if path == "/readyz":
            request.metrics_route = "readyz"  # type: ignore[attr-defined]
            return await areadyz(request)
        if path == "/metrics":
            from resolvo.observability.metrics import metrics_view

            request.metrics_route = "metrics"  # type: ignore[attr-defined]
            return await sync_to_async(metrics_view, thread_sensitive=False)(request)
        return await self.get_response(request)


def _labelled(request: HttpRequest, route: str, view: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
    request.metrics_route = route  # type: ignore[attr-defined]
    return view(request)
