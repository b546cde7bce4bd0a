"""``manage.py ingest --org SLUG --kb NAME [--create] [--wait] PATH_OR_URL...``"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.models import Q
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from resolvo.knowledge import jobs, services
from resolvo.knowledge.management.commands._common import add_scope_arguments, scope_from_options
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.services import organization_ensure

ACTIVE = [Document.Status.QUEUED, Document.Status.PARSING, Document.Status.EMBEDDING]
SWEEP_SECONDS = 5.0


def _files(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(
            p
            for p in target.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(target).parts)
        )
    return [target]


class Command(BaseCommand):
    help = "Add files, directories (recursively) and URLs to a knowledge base and ingest them."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument(
            "--create", action="store_true", help="Create the organization and knowledge base if missing"
        )
        parser.add_argument(
            "--wait", action="store_true", help="Show progress until every document is indexed or failed"
        )
        parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["create"]:
            organization = organization_ensure(slug=opts["org"])
            services.knowledge_base_create(organization=organization, name=opts["kb"])
        kb = scope_from_options(opts["org"], opts["kb"])
        console = Console(file=cast(IO[str], self.stdout._out))
        items: list[tuple[str, Path | str]] = []
        for target in opts["targets"]:
            if target.startswith(("http://", "https://")):
                items.append(("url", target))
                continue
            path = Path(target)
            if not path.exists():
                raise CommandError(f"No such file or directory: {target}")
            items.extend(("file", p) for p in _files(path))
        started = time.monotonic()
        ids: list[int] = []
        with self._progress(console, enabled=opts["wait"]) as progress:
            docs_task = progress.add_task("Documents", total=None)
            chunks_task = progress.add_task("Chunks", total=None)
            queued: list[int] = []
            for kind, item in items:
                if kind == "url":
                    # The same service as the admin's URL form: a sitemap's pages are added by
                    # the worker that reads it, and counted here as they arrive.
                    doc = services.source_add(knowledge_base=kb, url=str(item), enqueue=False)
                else:
                    assert isinstance(item, Path)
                    doc = services.document_upload(
                        knowledge_base=kb, filename=item.name, content=item.read_bytes(), enqueue=False
                    )
                ids.append(doc.pk)
                if doc.status == Document.Status.QUEUED:
                    queued.append(doc.pk)
            if opts["wait"] and not settings.CELERY_TASK_ALWAYS_EAGER:
                self._check_workers()
            runner = self._in_thread(lambda: services.documents_enqueue(document_ids=queued))
            last_sweep = time.monotonic()
            while opts["wait"] and (runner.is_alive() or _documents(ids).filter(status__in=ACTIVE).exists()):
                self._refresh(progress, docs_task, chunks_task, ids)
                time.sleep(0.5)
                if runner.is_alive() or time.monotonic() - last_sweep < SWEEP_SECONDS:
                    continue
                # Never wait on a document nobody is working on: one left behind by a run that
                # died, or queued before this command with its message lost.
                last_sweep = time.monotonic()
                everything = list(_documents(ids).values_list("pk", flat=True))
                if settings.CELERY_TASK_ALWAYS_EAGER:
                    # This process is the worker and its runner is done: whatever is still
                    # queued has no message waiting; a run with a live lease is awaited.
                    runner = self._in_thread(
                        functools.partial(jobs.documents_recover_stalled, document_ids=everything, orphaned="queued")
                    )
                else:
                    jobs.documents_recover_stalled(document_ids=everything)
            runner.join()
            self._refresh(progress, docs_task, chunks_task, ids)
        if opts["wait"]:
            self._summary(console, kb, ids, time.monotonic() - started)
        else:
            console.print(
                f"Queued {len(ids)} document(s) in {kb}. Follow them with: "
                f"manage.py kb_status --org {kb.organization.slug} --kb {kb.name}"
            )

    @staticmethod
    def _in_thread(work: Callable[[], object]) -> threading.Thread:
        """Run ``work`` (queueing documents). In the embedded mode tasks run eagerly, so they run
        on a thread of their own while this one draws the progress bar."""

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

    @staticmethod
    def _check_workers() -> None:
        """--wait with workers: refuse to wait when no worker consumes the ingest queues."""
        from workers.celery import app

        replies = app.control.inspect(timeout=2.0).active_queues() or {}
        consumed = {q["name"] for queues in replies.values() for q in queues}
        if not consumed & {services.INGEST_QUEUE, services.BULK_QUEUE}:
            raise CommandError(
                "The documents are queued, but no worker consumes the ingest queues, so --wait would wait "
                "forever. Start one: python -m celery -A workers worker -Q ingest,ingest-bulk"
            )

    @staticmethod
    def _progress(console: Console, *, enabled: bool) -> Progress:
        return Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )

    @staticmethod
    def _refresh(progress: Progress, docs_task: Any, chunks_task: Any, ids: list[int]) -> None:
        rows = list(_documents(ids).values_list("status", "chunk_count", "chunks_done"))
        finished = sum(1 for status, _, _ in rows if status not in ACTIVE)
        progress.update(docs_task, total=len(rows), completed=finished)
        progress.update(chunks_task, total=sum(r[1] for r in rows) or None, completed=sum(r[2] for r in rows))

    @staticmethod
    def _summary(console: Console, kb: KnowledgeBase, ids: list[int], seconds: float) -> None:
        docs = list(_documents(ids).order_by("status", "source"))
        table = Table(title=f"{kb} — {len(docs)} document(s) in {seconds:.1f} s")
        for column in ("Source", "Status", "Chunks", "Time (ms)", "Error"):
            table.add_column(column)
        for doc in docs:
            ms = sum(x or 0 for x in (doc.parse_ms, doc.embed_ms, doc.index_ms))
            style = {"failed": "red", "indexed": "green"}.get(doc.status, "yellow")
            table.add_row(doc.source, f"[{style}]{doc.status}[/]", str(doc.chunk_count), str(ms), doc.error)
        console.print(table)
        pages = [d for d in docs if not d.is_sitemap]
        failed = sum(1 for d in docs if d.status == Document.Status.FAILED)
        indexed = sum(1 for d in pages if d.status == Document.Status.INDEXED)
        console.print(
            f"indexed {indexed}, failed {failed}, chunks {sum(d.chunk_count for d in docs if d.status == 'indexed')}"
        )


def _documents(ids: list[int]) -> Any:
    """The documents given on the command line and the pages their sitemaps added."""
    return Document.objects.filter(Q(pk__in=ids) | Q(parent_id__in=ids))
