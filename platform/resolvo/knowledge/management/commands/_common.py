"""Shared argument handling for the commands that work on one knowledge base, and the progress
bars of the commands that wait for documents (``ingest``, ``reindex``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.db.models import QuerySet
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from resolvo.knowledge import jobs, services
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.knowledge.selectors import KnowledgeBaseNotFound, knowledge_base_for_operator
from resolvo.organizations.selectors import OrganizationNotFound


def add_scope_arguments(parser: CommandParser) -> None:
    parser.add_argument("--org", required=True, help="Organization slug")
    parser.add_argument("--kb", required=True, help="Knowledge base name")


def scope_from_options(org_slug: str, kb_name: str) -> KnowledgeBase:
    """The knowledge base the command works on, through the tenant gate's selectors."""
    try:
        return knowledge_base_for_operator(org_slug=org_slug, name=kb_name)
    except (OrganizationNotFound, KnowledgeBaseNotFound) as exc:
        raise CommandError(f"{exc} (ingest --create makes it).") from None


# --- Following documents until they are indexed or failed (ingest --wait, reindex --wait) ------

ACTIVE = [Document.Status.QUEUED, Document.Status.PARSING, Document.Status.EMBEDDING]
SWEEP_SECONDS = 5.0


def progress_bars(console: Console, *, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )


def in_thread(work: Callable[[], object]) -> threading.Thread:
    """Run ``work`` (queueing documents). In the embedded mode tasks run eagerly, so they run on
    a thread of their own while the command's thread draws the progress bars."""

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="ingest-enqueue", daemon=True)
    thread.start()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        thread.join()
    return thread


def check_workers() -> None:
    """--wait with workers: refuse to wait when no worker consumes the ingest queues."""
    from workers.celery import app

    replies = app.control.inspect(timeout=2.0).active_queues() or {}
    consumed = {q["name"] for queues in replies.values() for q in queues}
    if not consumed & {services.INGEST_QUEUE, services.BULK_QUEUE}:
        raise CommandError(
            "The documents are queued, but no worker consumes the ingest queues, so --wait would wait "
            "forever. Start one: python -m celery -A workers worker -Q ingest,ingest-bulk"
        )


def follow_documents(
    documents: Callable[[], QuerySet[Document]], *, runner: threading.Thread, progress: Progress, wait: bool
) -> None:
    """Draw the documents' progress until the ``runner`` thread is done and, when ``wait``, until
    none of ``documents()`` is queued or in progress any more.

    Never waits on a document nobody is working on (one left behind by a run that died, or queued
    with its message lost): every ``SWEEP_SECONDS`` such documents are sent again."""
    docs_task = progress.add_task("Documents", total=None)
    chunks_task = progress.add_task("Chunks", total=None)
    last_sweep = time.monotonic()
    while wait and (runner.is_alive() or documents().filter(status__in=ACTIVE).exists()):
        _refresh(progress, docs_task, chunks_task, documents())
        time.sleep(0.5)
        if runner.is_alive() or time.monotonic() - last_sweep < SWEEP_SECONDS:
            continue
        last_sweep = time.monotonic()
        everything = list(documents().values_list("pk", flat=True))
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # This process is the worker and its runner is done: whatever is still queued has
            # no message waiting; a run with a live lease is awaited.
            runner = in_thread(
                functools.partial(jobs.documents_recover_stalled, document_ids=everything, orphaned="queued")
            )
        else:
            jobs.documents_recover_stalled(document_ids=everything)
    runner.join()
    _refresh(progress, docs_task, chunks_task, documents())


def _refresh(progress: Progress, docs_task: TaskID, chunks_task: TaskID, documents: QuerySet[Document]) -> None:
    rows = list(documents.values_list("status", "chunk_count", "chunks_done"))
    finished = sum(1 for status, _, _ in rows if status not in ACTIVE)
    progress.update(docs_task, total=len(rows), completed=finished)
    progress.update(chunks_task, total=sum(r[1] for r in rows) or None, completed=sum(r[2] for r in rows))
