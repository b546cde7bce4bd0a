"""Thin task adapters: take ids, call a service, retry transient failures with backoff."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from ingestion.types import TransientError


def _retry_or_fail(task: Task, exc: TransientError, on_final: Any, *, args: list[Any] | None = None) -> None:
    """Retry with exponential backoff (``args`` replace the task's arguments); after the last
    attempt call ``on_final`` with a readable message instead."""
    max_retries = settings.INGEST_MAX_RETRIES
    if task.request.retries >= max_retries:
        on_final(f"{exc} (gave up after {max_retries + 1} attempts)")
        return
    countdown = min(2**task.request.retries * settings.INGEST_RETRY_BACKOFF, 300)
    raise task.retry(args=args, exc=exc, countdown=countdown, max_retries=max_retries)


def _ingest(task: Task, document_ids: list[int], *, single: bool) -> dict[int, str]:
    from resolvo.knowledge import services

    try:
        outcomes = services.documents_ingest_run(document_ids=document_ids)
    except services.RetryDocuments as exc:
        # Only the documents that hit the transient problem go round again.
        failed = exc.document_ids

        def give_up(message: str) -> None:
            for document_id in failed:
                services.document_fail(document_id=document_id, message=message)

        _retry_or_fail(task, exc, give_up, args=[failed[0]] if single else [failed])
        return {i: "failed" for i in failed}
    return {i: o.status for i, o in outcomes.items()}


@shared_task(bind=True, acks_late=True, name="workers.tasks.document_ingest")
def document_ingest(self: Task, document_id: int) -> str:
    """Ingest one document (parse, split, embed, index); idempotent."""
    return _ingest(self, [document_id], single=True)[document_id]


@shared_task(bind=True, acks_late=True, name="workers.tasks.document_ingest_batch")
def document_ingest_batch(self: Task, document_ids: list[int]) -> dict[int, str]:
    """Ingest several documents with shared embedding batches; idempotent."""
    return _ingest(self, document_ids, single=False)


@shared_task(bind=True, acks_late=True, name="workers.tasks.document_delete")
def document_delete(self: Task, document_id: int) -> bool:
    from resolvo.knowledge import services

    try:
        return services.document_delete_run(document_id=document_id)
    except TransientError as exc:
        _retry_or_fail(self, exc, lambda msg: None)
        return False


@shared_task(acks_late=True, name="workers.tasks.knowledge_base_reindex")
def knowledge_base_reindex(knowledge_base_id: int) -> int:
    from resolvo.knowledge import services
    from resolvo.knowledge.models import KnowledgeBase

    kb = KnowledgeBase.objects.filter(pk=knowledge_base_id).first()
    return services.knowledge_base_reindex(knowledge_base=kb) if kb else 0


@shared_task(bind=True, acks_late=True, name="workers.tasks.source_sync")
def source_sync(self: Task, knowledge_base_id: int, url: str) -> int:
    from resolvo.knowledge import services
    from resolvo.knowledge.models import KnowledgeBase

    kb = KnowledgeBase.objects.filter(pk=knowledge_base_id).first()
    if kb is None:
        return 0
    try:
        return len(services.source_sync(knowledge_base=kb, url=url, retry_transient=True))
    except TransientError as exc:
        _retry_or_fail(self, exc, lambda msg: None)
        return 0


@shared_task(name="workers.tasks.documents_recover_stalled")
def documents_recover_stalled() -> int:
    from resolvo.knowledge import services

    return services.documents_recover_stalled()
