"""Celery's side of the request id and the task metrics (connected by ``workers/celery.py``).

* ``before_task_publish``: the sender's request id goes into the message headers
  (``resolvo_request_id``), so the worker's logs for an upload carry the upload request's id.
* ``task_prerun`` / ``task_postrun``: the worker restores it for the task's run (a task sent
  without one, such as a beat schedule's, runs under its own task id); an eager task keeps the
  caller's. Outcomes are counted (succeeded, failed, retried).
* ``worker_init``: with ``CELERY_METRICS_PORT`` set, the worker's main process serves its metrics
  (every pool process's, in multi-process mode) on that port.
"""

from __future__ import annotations

import logging
import os
from contextvars import Token
from typing import Any

from celery import Celery, signals

from resolvo.observability.requestid import get_request_id, reset_request_id, set_request_id

HEADER = "resolvo_request_id"
log = logging.getLogger(__name__)
_tokens: dict[str, Token[str]] = {}


def _publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    value = get_request_id()
    if value and headers is not None and HEADER not in headers:
        headers[HEADER] = value


def _request_id_of(task: Any, task_id: str) -> str:
    request = getattr(task, "request", None)
    value = getattr(request, HEADER, None) if request is not None else None
    if not value and request is not None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    if value:
        return str(value)
    if request is not None and getattr(request, "is_eager", False) and get_request_id():
        return get_request_id()
    return task_id


def _prerun(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    _tokens[task_id] = set_request_id(_request_id_of(task, task_id))


def _postrun(task_id: str = "", task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    from resolvo.observability import metrics

    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            reset_request_id(token)
        except ValueError:  # set in another context (should not happen); leave it
            pass
    name = getattr(task, "name", "") or "unknown"
    if state == "SUCCESS":
        metrics.task_finished(task=name, state="succeeded")
    elif state == "FAILURE":
        metrics.task_finished(task=name, state="failed")


def _retry(request: Any = None, **kwargs: Any) -> None:
    from resolvo.observability import metrics

    metrics.task_finished(task=getattr(request, "task", None) or "unknown", state="retried")


def _worker_init(**kwargs: Any) -> None:
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    from resolvo.observability.metrics import scrape_registry

    address = os.environ.get("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104 - a container's port, not published
    start_http_server(int(port), addr=address, registry=scrape_registry())
    log.info("worker metrics on %s:%s", address, port)


def connect(app: Celery) -> None:
    """Connect the handlers (weakly referenced signals would drop module-level functions' closures,
    so strong references). ``app`` is accepted for symmetry; Celery's signals are global."""
    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid="resolvo-request-id-publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="resolvo-request-id-prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="resolvo-request-id-postrun")
    signals.task_retry.connect(_retry, weak=False, dispatch_uid="resolvo-task-retry")
    signals.worker_init.connect(_worker_init, weak=False, dispatch_uid="resolvo-worker-metrics")
