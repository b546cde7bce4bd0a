"""Prometheus metrics (``prometheus-client``): what is counted, where, and the ``/metrics`` view.

Recorded where things happen, each by one call:

* HTTP requests, by route name, method and status (:class:`MetricsMiddleware`);
* answers by outcome, per-stage latency and tokens, when an answer's trace is saved
  (:func:`answer_trace_saved`, called by ``answers.services``);
* handoffs by trigger (:func:`handoff_recorded`, ``conversations.services``);
* ingested documents by final status (:func:`document_finished`, ``knowledge.jobs``);
* Celery task outcomes (``celery_signals``);
* the length of each Celery queue, read from Redis at scrape time (:class:`QueueLengthCollector`).

Multi-process servers (uvicorn ``--workers N``, Celery's prefork pool) need
``PROMETHEUS_MULTIPROC_DIR``: an empty folder per host or container, set in the environment
before the processes start; each process then writes its values there and a scrape sums them.
Without it the values live in the process that serves the scrape. See docs/observability.md.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
_PROBES = frozenset({"healthz", "readyz", "metrics"})
access_log = logging.getLogger("resolvo.access")

HTTP_REQUESTS = Counter(
    "resolvo_http_requests", "HTTP requests served, by route name, method and status.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "resolvo_http_request_duration_seconds",
    "Time until the response (headers, for a streamed response) is ready, by route name and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ANSWERS = Counter(
    "resolvo_answers", "Answers by outcome (answered, quoted, abstained, error) and channel.", ["outcome", "channel"]
)
ANSWER_STAGE = Histogram(
    "resolvo_answer_stage_seconds",
    "Answer latency by engine stage (the trace's timings; 'total' is the whole answer).",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
LLM_TOKENS = Counter("resolvo_llm_tokens", "LLM tokens by kind (prompt, completion) and backend.", ["kind", "backend"])
HANDOFFS = Counter("resolvo_handoffs", "Conversations handed to a person, by trigger.", ["trigger"])
DOCUMENTS = Counter("resolvo_ingest_documents", "Documents that reached a final status (indexed, failed).", ["status"])
TASKS = Counter(
    "resolvo_celery_tasks", "Celery task runs by task name and state (succeeded, failed, retried).", ["task", "state"]
)


# --- recording -----------------------------------------------------------------------------------


def answer_outcome(*, error: str, abstained: bool, abstain_reason: str) -> str:
    if error:
        return "error"
    if abstain_reason == "quoted":
        return "quoted"
    return "abstained" if abstained else "answered"


def answer_trace_saved(trace: Any) -> None:
    """Record one answer from its saved trace (an ``answers.models.AnswerTrace``)."""
    outcome = answer_outcome(error=trace.error, abstained=trace.abstained, abstain_reason=trace.abstain_reason)
    ANSWERS.labels(outcome=outcome, channel=trace.channel or "api").inc()
    for stage, ms in (trace.timings or {}).items():
        if isinstance(stage, str) and isinstance(ms, int | float) and ms >= 0:
            ANSWER_STAGE.labels(stage=stage).observe(ms / 1000)
    backend = trace.backend or "none"
    if trace.prompt_tokens:
        LLM_TOKENS.labels(kind="prompt", backend=backend).inc(trace.prompt_tokens)
    if trace.completion_tokens:
        LLM_TOKENS.labels(kind="completion", backend=backend).inc(trace.completion_tokens)


def handoff_recorded(*, trigger: str) -> None:
    HANDOFFS.labels(trigger=trigger).inc()


def document_finished(*, status: str) -> None:
    DOCUMENTS.labels(status=status).inc()


def task_finished(*, task: str, state: str) -> None:
    TASKS.labels(task=task, state=state).inc()


# --- HTTP requests -------------------------------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The URL's name (``namespace:name``), else its pattern; never the raw path."""
    forced = getattr(request, "metrics_route", None)
    if forced:
        return str(forced)
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or match.route or UNMATCHED


def _observe(request: HttpRequest, status: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    route = route_of(request)
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_LATENCY.labels(route=route, method=method).observe(elapsed)
    # The access log, with the request id (probes only at DEBUG: they come every few seconds).
    access_log.log(
        logging.DEBUG if route in _PROBES else logging.INFO,
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        status,
        elapsed * 1000,
        extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
    )


class MetricsMiddleware:
    """Counts and times every request (the outermost middleware but the request id's)."""

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
        started = time.perf_counter()
        response = self.get_response(request)
        _observe(request, response.status_code, started)
        return response

    async def _acall(self, request: HttpRequest) -> Any:
        started = time.perf_counter()
        response = await self.get_response(request)
        _observe(request, response.status_code, started)
        return response


# --- queue lengths -------------------------------------------------------------------------------

# Kombu's Redis transport keeps a queue as a list under its name, and one more list per priority
# step (``name\x06\x16{n}``) for messages sent with a priority.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def celery_queues() -> list[str]:
    """The queues the platform sends to: the default, the routed ones and the fair-share one."""
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE, "ingest-bulk"}  # knowledge.services.BULK_QUEUE
    for route in settings.CELERY_TASK_ROUTES.values():
        if isinstance(route, dict) and route.get("queue"):
            queues.add(str(route["queue"]))
    return sorted(queues)


class QueueLengthCollector:
    """``resolvo_celery_queue_length{queue}`` from Redis list lengths, read at scrape time with one
    pipelined round trip and a short timeout; ``resolvo_celery_broker_up`` says whether it worked.
    Only when ``REDIS_URL`` is set (the embedded mode's tasks run in process, without a queue)."""

    def describe(self) -> list[Metric]:
        return []  # nothing read when registered; the names are known only at a scrape

    def collect(self) -> Iterator[Metric]:
        url = settings.REDIS_URL
        if not url:
            return
        import redis

        up = GaugeMetricFamily("resolvo_celery_broker_up", "1 when the broker answered the queue-length read.")
        lengths = GaugeMetricFamily(
            "resolvo_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        queues = celery_queues()
        timeout = settings.HEALTH_CHECK_TIMEOUT
        try:
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            try:
                with client.pipeline(transaction=False) as pipe:
                    for queue in queues:
                        pipe.llen(queue)
                        for step in _PRIORITY_STEPS:
                            pipe.llen(f"{queue}{_PRIORITY_SEP}{step}")
                    counts = pipe.execute()
            finally:
                client.close()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        per_queue = 1 + len(_PRIORITY_STEPS)
        for i, queue in enumerate(queues):
            lengths.add_metric([queue], sum(int(c) for c in counts[i * per_queue : (i + 1) * per_queue]))
        up.add_metric([], 1)
        yield up
        yield lengths


# --- exposition ----------------------------------------------------------------------------------


def scrape_registry() -> CollectorRegistry:
    """What one scrape reports: this process's metrics, or in multi-process mode the values of
    every process that wrote to ``PROMETHEUS_MULTIPROC_DIR``, plus the queue lengths read now."""
    registry = CollectorRegistry(auto_describe=False)
    multiproc_dir = os.environ.get(MULTIPROC_ENV)
    if multiproc_dir:
        MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    registry.register(QueueLengthCollector())
    return registry


# Loopback, RFC 1918 and IPv6 unique-local networks (``is_private`` would also admit documentation
# and other reserved ranges).
_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)


def _is_internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _INTERNAL)


def metrics_allowed(request: HttpRequest) -> tuple[bool, int]:
    """Access to ``/metrics``: with ``METRICS_TOKEN`` set, only ``Authorization: Bearer <token>``;
    without it, only clients on loopback or private addresses that did not come through a proxy
    (a request that carries ``X-Forwarded-For`` may be anyone's). Returns (allowed, refusal status)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = given.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
        return ok, 401
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False, 403
    return _is_internal(request.META.get("REMOTE_ADDR", "")), 403


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition (``GET /metrics``)."""
    allowed, status = metrics_allowed(request)
    if not allowed:
        response = HttpResponse("metrics are not available to this client\n", status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
