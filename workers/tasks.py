"""Thin task adapters: take ids, call the job module, retry transient failures with backoff.

Each task is registered under a name from :mod:`resolvo.background`, which is how the platform
sends them without importing this module.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task
from django.conf import settings

from ingestion.types import TransientError
from resolvo import background
from resolvo.knowledge import jobs
from resolvo.tuning import jobs as tuning_jobs
from resolvo.webhooks import delivery


def _retry_or_fail(task: Task, exc: TransientError, on_final: Callable[[str], object], *, args: list[object]) -> None:
    """Retry with exponential backoff (``args`` replace the task's arguments); after the last
    attempt call ``on_final`` with a readable message instead."""
    max_retries = settings.INGEST_MAX_RETRIES
    if task.request.retries >= max_retries:
        on_final(f"{exc} (gave up after {max_retries + 1} attempts)")
        return
    countdown = min(2**task.request.retries * settings.INGEST_RETRY_BACKOFF, 300)
    raise task.retry(args=args, exc=exc, countdown=countdown, max_retries=max_retries)


def _ingest(task: Task, document_ids: list[int], *, single: bool) -> dict[int, str]:
    busy: list[jobs.Busy] = []
    try:
        outcomes = jobs.documents_ingest_run(document_ids=document_ids, busy=busy)
        _come_back_for(task, busy)
    except jobs.RetryDocuments as exc:
        # Only the documents that hit the transient problem go round again.
        failed = exc.document_ids

        def give_up(message: str) -> None:
            for document_id in failed:
                jobs.document_fail(document_id=document_id, message=message)

        _retry_or_fail(task, exc, give_up, args=[failed[0]] if single else [failed])
        return {i: "failed" for i in failed}
    return {i: o.status for i, o in outcomes.items()}


def _come_back_for(task: Task, busy: list[jobs.Busy]) -> None:
    """Documents another run holds a live lease on: when this delivery is a redelivery after that
    worker died, its lease runs out soon (nobody renews it); look again just after that, in a new
    message. When the holder is alive it finishes first and the new message finds nothing to do.
    (In the embedded mode there is no other worker to wait for; nothing is sent.)"""
    if task.request.is_eager:
        return
    for b in busy:
        background.send(background.DOCUMENT_INGEST_BATCH, b.document_ids, countdown=b.seconds + 1)


@shared_task(bind=True, acks_late=True, name=background.DOCUMENT_INGEST)
def document_ingest(self: Task, document_id: int) -> str:
    """Ingest one document (parse, split, embed, index) or read one sitemap; idempotent."""
    return _ingest(self, [document_id], single=True)[document_id]


@shared_task(bind=True, acks_late=True, name=background.DOCUMENT_INGEST_BATCH)
def document_ingest_batch(self: Task, document_ids: list[int]) -> dict[int, str]:
    """Ingest several documents with shared embedding batches; idempotent."""
    return _ingest(self, document_ids, single=False)


@shared_task(bind=True, acks_late=True, name=background.DOCUMENT_DELETE)
def document_delete(self: Task, document_id: int) -> bool:
    try:
        return jobs.document_delete_run(document_id=document_id)
    except TransientError as exc:
        _retry_or_fail(self, exc, lambda msg: None, args=[document_id])
        return False


@shared_task(name=background.DOCUMENTS_RECOVER_STALLED)
def documents_recover_stalled() -> int:
    return jobs.documents_recover_stalled()


@shared_task(bind=True, acks_late=True, name=background.WEBHOOK_DELIVER)
def webhook_deliver(self: Task, delivery_id: int) -> str:
    """One attempt at a webhook delivery; idempotent (the claim lets one run send). A retry due
    soon is sent again with a countdown; later ones are the sweeper's (``webhooks_retry_due``).
    (In the embedded mode a countdown would run at once, so nothing is sent.)"""
    outcome = delivery.webhook_deliver_run(delivery_id=delivery_id)
    soon = outcome.retry_in is not None and outcome.retry_in <= delivery.COUNTDOWN_MAX_SECONDS
    if soon and outcome.retry_in is not None and not self.request.is_eager:
        # A moment past the due time, so the claim finds it due.
        background.send(background.WEBHOOK_DELIVER, delivery_id, countdown=outcome.retry_in + 0.5)
    return outcome.status


@shared_task(name=background.WEBHOOKS_RETRY_DUE)
def webhooks_retry_due() -> int:
    return delivery.webhooks_retry_due()


@shared_task(acks_late=True, name=background.TUNING_RUN)
def tuning_run(run_id: int) -> str:
    """Train, evaluate and gate one tuning run (the ``tuning`` queue); idempotent: a finished
    run is left alone, a run whose worker died resumes from its last checkpoint."""
    return tuning_jobs.tuning_run_execute(run_id=run_id)


@shared_task(name=background.TUNING_RUNS_RECOVER_STALLED)
def tuning_runs_recover_stalled() -> int:
    return tuning_jobs.tuning_runs_recover_stalled()
