"""``manage.py ingest --org SLUG --kb NAME [--create] [--wait] [--tag TAG]... [--tags-from-folder] PATH_OR_URL...``"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from rich.console import Console
from rich.table import Table

from ingestion.tags import TagError, merge_tags, slugify_tag, validate_tags
from resolvo.knowledge import services
from resolvo.knowledge.management.commands._common import (
    add_scope_arguments,
    check_workers,
    follow_documents,
    in_thread,
    progress_bars,
    scope_from_options,
)
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.services import organization_ensure


def _folder_tag(target: Path, file: Path) -> list[str]:
    """The file's immediate folder as a tag, for a file found inside a directory given on the
    command line (``manuals/galaxy-s10/battery.md`` -> ``galaxy-s10``); none at the top level."""
    if not target.is_dir() or file.parent.resolve() == target.resolve():
        return []
    tag = slugify_tag(file.parent.name)
    return [tag] if tag else []


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
        parser.add_argument(
            "--tag",
            action="append",
            default=[],
            dest="tags",
            metavar="TAG",
            help="Tag every document with TAG (repeat for several), e.g. --tag galaxy-s10",
        )
        parser.add_argument(
            "--tags-from-folder",
            action="store_true",
            help="Tag each file found in a directory with the name of the folder it sits in "
            "(manuals/galaxy-s10/battery.md -> galaxy-s10)",
        )
        parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["create"]:
            organization = organization_ensure(slug=opts["org"])
            services.knowledge_base_create(organization=organization, name=opts["kb"])
        kb = scope_from_options(opts["org"], opts["kb"])
        try:
            given = validate_tags(opts["tags"])
        except TagError as exc:
            raise CommandError(str(exc)) from None
        console = Console(file=cast(IO[str], self.stdout._out))
        items: list[tuple[str, Path | str, list[str]]] = []
        for target in opts["targets"]:
            if target.startswith(("http://", "https://")):
                items.append(("url", target, given))
                continue
            path = Path(target)
            if not path.exists():
                raise CommandError(f"No such file or directory: {target}")
            items.extend(
                ("file", p, merge_tags(given, _folder_tag(path, p) if opts["tags_from_folder"] else []))
                for p in _files(path)
            )
        started = time.monotonic()
        ids: list[int] = []
        with progress_bars(console, enabled=opts["wait"]) as progress:
            queued: list[int] = []
            for kind, item, tags in items:
                if kind == "url":
                    # The same service as the admin's URL form: a sitemap's pages are added by
                    # the worker that reads it, and counted here as they arrive.
                    doc = services.source_add(knowledge_base=kb, url=str(item), enqueue=False, tags=tags or None)
                else:
                    assert isinstance(item, Path)
                    doc = services.document_upload(
                        knowledge_base=kb,
                        filename=item.name,
                        content=item.read_bytes(),
                        enqueue=False,
                        tags=tags or None,
                    )
                ids.append(doc.pk)
                if doc.status == Document.Status.QUEUED:
                    queued.append(doc.pk)
            if opts["wait"] and not settings.CELERY_TASK_ALWAYS_EAGER:
                check_workers()
            runner = in_thread(lambda: services.documents_enqueue(document_ids=queued))
            follow_documents(lambda: _documents(ids), runner=runner, progress=progress, wait=opts["wait"])
        if opts["wait"]:
            self._summary(console, kb, ids, time.monotonic() - started)
        else:
            console.print(
                f"Queued {len(ids)} document(s) in {kb}. Follow them with: "
                f"manage.py kb_status --org {kb.organization.slug} --kb {kb.name}"
            )

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
