"""``manage.py reindex (--all | --org SLUG [--kb NAME]) [--missing] [--wait]``"""

from __future__ import annotations

from typing import IO, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from rich.console import Console

from resolvo.knowledge import services
from resolvo.knowledge.backup import documents_missing_points
from resolvo.knowledge.management.commands._common import (
    check_workers,
    follow_documents,
    in_thread,
    progress_bars,
    scope_from_options,
)
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.knowledge.selectors import documents_with_chunks
from resolvo.organizations.models import Organization
from resolvo.organizations.selectors import OrganizationNotFound, organization_get


class Command(BaseCommand):
    help = (
        "Read, split and embed documents again from their stored originals (web pages are fetched "
        "again): after a change of embedding model or chunking, or to rebuild a lost or wiped vector "
        "store. Sitemaps, failed documents and documents being deleted are left alone. Safe to run "
        "again: chunks already in the store are not embedded twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--all", action="store_true", help="Every organization")
        scope.add_argument("--org", help="One organization (slug)")
        parser.add_argument("--kb", help="With --org: one knowledge base (name)")
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Only documents that are not indexed with all their chunks in the vector store "
            "(after a restore, or to resume an interrupted re-index)",
        )
        parser.add_argument("--wait", action="store_true", help="Show progress until every document is done")

    def handle(self, *args: Any, **opts: Any) -> None:
        organization: Organization | None = None
        knowledge_base: KnowledgeBase | None = None
        if opts["kb"] and not opts["org"]:
            raise CommandError("--kb needs --org.")
        if opts["org"] and opts["kb"]:
            knowledge_base = scope_from_options(opts["org"], opts["kb"])
        elif opts["org"]:
            try:
                organization = organization_get(slug=opts["org"])
            except OrganizationNotFound as exc:
                raise CommandError(str(exc)) from None
        console = Console(file=cast(IO[str], self.stdout._out))
        documents = documents_with_chunks(organization=organization, knowledge_base=knowledge_base)
        if opts["missing"]:
            ids = documents_missing_points(documents=documents.select_related("knowledge_base"))
        else:
            ids = list(documents.values_list("pk", flat=True))
        scope = "every organization" if opts["all"] else (str(knowledge_base or organization))
        if not ids:
            console.print(f"Nothing to re-index in {scope}.")
            return
        if opts["wait"] and not settings.CELERY_TASK_ALWAYS_EAGER:
            check_workers()
        with progress_bars(console, enabled=opts["wait"]) as progress:
            runner = in_thread(lambda: services.documents_reindex(document_ids=ids))
            follow_documents(lambda: _documents(ids), runner=runner, progress=progress, wait=opts["wait"])
        if not opts["wait"]:
            console.print(f"Queued {len(ids)} document(s) of {scope} for re-indexing.")
            return
        S = Document.Status
        rows = _documents(ids)
        indexed, failed = rows.filter(status=S.INDEXED).count(), rows.filter(status=S.FAILED).count()
        console.print(f"Re-indexed {scope}: indexed {indexed}, failed {failed} of {len(ids)} document(s).")
        for doc in rows.filter(status=S.FAILED).order_by("pk")[:20]:
            console.print(f"  [red]failed[/] {doc.source}: {doc.error}")


def _documents(ids: list[int]) -> QuerySet[Document]:
    return Document.objects.filter(pk__in=ids)
