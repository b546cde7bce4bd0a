"""Sending background tasks: by name, once the current transaction commits.

The platform never imports ``workers.tasks`` (the tasks import the platform's services, and a
circle between the two would make either side impossible to load alone); it names the task
instead. The names below are the whole contract between the two sides: ``workers/tasks.py``
registers a task under each, and a layout test keeps the platform from importing the tasks.

Sending goes through the Celery app's signature, so routing (``CELERY_TASK_ROUTES``) and the
embedded mode's eager execution behave exactly as ``task.delay`` would.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

DOCUMENT_INGEST = "workers.tasks.document_ingest"
DOCUMENT_INGEST_BATCH = "workers.tasks.document_ingest_batch"
DOCUMENT_DELETE = "workers.tasks.document_delete"
DOCUMENTS_RECOVER_STALLED = "workers.tasks.documents_recover_stalled"
WEBHOOK_DELIVER = "workers.tasks.webhook_deliver"
WEBHOOKS_RETRY_DUE = "workers.tasks.webhooks_retry_due"
DRAFT_GENERATE = "workers.tasks.draft_generate"
TUNING_RUN = "workers.tasks.tuning_run"
TUNING_RUNS_RECOVER_STALLED = "workers.tasks.tuning_runs_recover_stalled"


def send(task: str, *args: Any, queue: str | None = None, countdown: float | None = None) -> None:
    """Send ``task`` with ``args`` now (JSON-serialisable ids, never model instances or files),
    to ``queue`` instead of its routed one, and not before ``countdown`` seconds if given."""
    from workers.celery import app

    if task not in app.tasks:
        # Register the tasks as a worker does at start-up; without them the embedded mode's
        # eager execution would have nothing to run and the message would go nowhere.
        app.loader.import_default_modules()
        if task not in app.tasks:
            raise LookupError(f"no background task is registered as {task!r}")
    options: dict[str, Any] = {}
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    app.signature(task, args=args).apply_async(**options)


def send_on_commit(task: str, *args: Any, queue: str | None = None) -> None:
    """Send ``task`` once the surrounding transaction commits (at once outside a transaction),
    so a worker never reads a row that is not there yet."""
    transaction.on_commit(lambda: send(task, *args, queue=queue))
