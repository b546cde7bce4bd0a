"""Writes for knowledge bases and documents that people start: upload, add a web source, retry,
re-index, delete. Admin, commands and (later) the API call these; each queues the work for a
worker through :mod:`resolvo.background`. The work itself is in :mod:`resolvo.knowledge.jobs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import PurePath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from ingestion.sizes import format_size
from ingestion.tags import validate_tags
from resolvo import background
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import Organization

Status = Document.Status
INGEST_QUEUE, BULK_QUEUE = "ingest", "ingest-bulk"


@transaction.atomic
def knowledge_base_create(*, organization: Organization, name: str) -> KnowledgeBase:
    """The knowledge base ``name`` of ``organization``, created if it does not exist yet."""
    kb, _ = KnowledgeBase.objects.get_or_create(organization=organization, name=name)
    return kb


def documents_enqueue(*, document_ids: list[int]) -> None:
    """Queue ingestion once the current transaction commits, several documents per task.

    One document alone is sent as ``document_ingest``; more are grouped so the embedding model
    runs full batches (``INGEST_BATCH_DOCUMENTS`` per task). Fair queues: the documents of an
    organization that already has more than ``INGEST_FAIR_SHARE`` documents waiting or in progress
    go to the ``ingest-bulk`` queue, which workers consume in rotation with ``ingest``; so another
    organization's upload waits for at most one bulk batch per worker, not for the whole backlog.
    """
    ids = list(document_ids)
    if not ids:
        return
    orgs = dict(Document.objects.filter(pk__in=ids).values_list("pk", "knowledge_base__organization_id"))
    busy = dict(
        Document.objects.filter(
            knowledge_base__organization_id__in=set(orgs.values()),
            status__in=[Status.QUEUED, Status.PARSING, Status.EMBEDDING],
        )
        .order_by()
        .values("knowledge_base__organization_id")
        .annotate(n=Count("id"))
        .values_list("knowledge_base__organization_id", "n")
    )
    by_queue: dict[str, list[int]] = {}
    for document_id in ids:
        bulk = busy.get(orgs.get(document_id, 0), 0) > settings.INGEST_FAIR_SHARE
        by_queue.setdefault(BULK_QUEUE if bulk else INGEST_QUEUE, []).append(document_id)
    for queue, queued in by_queue.items():
        if len(queued) == 1:
            background.send_on_commit(background.DOCUMENT_INGEST, queued[0], queue=queue)
            continue
        size = settings.INGEST_BATCH_DOCUMENTS
        for start in range(0, len(queued), size):
            background.send_on_commit(background.DOCUMENT_INGEST_BATCH, queued[start : start + size], queue=queue)


@transaction.atomic
def document_upload(
    *,
    knowledge_base: KnowledgeBase,
    filename: str,
    content: bytes,
    url: str = "",
    declared_size: int | None = None,
    enqueue: bool = True,
    tags: Sequence[str] | None = None,
) -> Document:
    """Add or replace the document named ``filename`` and queue it for ingestion.

    Re-uploading identical bytes changes nothing but the ``tags``, when given (they replace the
    document's; the stored chunks are retagged in place). Changed bytes bump the version; the worker
    replaces the old chunks. ``tags`` are checked first (:class:`~ingestion.tags.TagError`);
    ``None`` keeps a replaced document's tags. A file over the size limit is recorded as failed, with the reason
    (callers may pass only the first limit+1 bytes of a huge upload and its ``declared_size``).
    With ``enqueue=False`` the caller queues the document itself (see :func:`documents_enqueue`).
    """
    original = PurePath(filename.replace("\\", "/")).name or "untitled"
    source = shorten_file_name(original)
    digest = hashlib.sha256(content).hexdigest()
    checked = validate_tags(list(tags)) if tags is not None else None
    doc = Document.objects.select_for_update().filter(knowledge_base=knowledge_base, source=source).first()
    if doc is not None and doc.content_hash == digest and doc.status != Status.FAILED:
        if checked is not None and checked != doc.tags:
            return document_tags_set(document=doc, tags=checked)
        return doc
    if doc is None:
        doc = Document(knowledge_base=knowledge_base, source=source, kind=Document.Kind.FILE)
    elif doc.content_hash != digest:
        doc.version += 1
    if checked is not None:
        doc.tags = checked
    doc.byte_size = len(content)
    doc.content_hash = digest
    doc.original_name = original if original != source else ""
    doc.attempts = 0
    doc.url = url or doc.url
    doc.chunks_done = 0
    doc.error = ""
    doc.queued_at = timezone.now()
    size = max(len(content), declared_size or 0)
    if size > settings.INGEST_MAX_BYTES:
        doc.byte_size = size
        doc.status = Status.FAILED
        doc.error = (
            f"The file is {format_size(size)}, over the upload limit of {format_size(settings.INGEST_MAX_BYTES)}."
        )
        doc.save()
        return doc
    doc.status = Status.QUEUED
    doc.lease_until = None
    if doc.file:
        doc.file.delete(save=False)
    doc.save()
    doc.file.save(source, ContentFile(content), save=True)
    if enqueue:
        documents_enqueue(document_ids=[doc.pk])
    return doc


def shorten_file_name(name: str, limit: int = 120) -> str:
    """``name`` cut to at most ``limit`` characters, keeping its extension and marking the cut.

    Storage (and every filesystem) has a limit on the length of a name; a long one is shortened
    rather than failing the upload, and the document records the original."""
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{stem[: limit - len(suffix) - 10]}…{digest}{suffix}"


def source_add(
    *, knowledge_base: KnowledgeBase, url: str, enqueue: bool = True, tags: Sequence[str] | None = None
) -> Document:
    """Add a web source: a sitemap (its pages are added by the worker that reads it) or a page.

    The one way in for URLs, whichever door they come through (admin form, ``ingest`` command,
    API): one behaviour, one set of limits and error messages. A URL that cannot be fetched at
    all is recorded as a failed document with the reason. With ``enqueue=False`` the caller
    queues the document itself. ``tags`` (checked; ``None`` keeps an existing source's) go to
    the page, or to every page of a sitemap; the knowledge base's URL rules add theirs at ingestion.
    """
    url = url.strip()
    kind = Document.Kind.SITEMAP if _looks_like_sitemap(url) else Document.Kind.URL
    checked = validate_tags(list(tags)) if tags is not None else None
    return _web_document_add(knowledge_base=knowledge_base, url=url, kind=kind, enqueue=enqueue, tags=checked)


def document_add_url(
    *, knowledge_base: KnowledgeBase, url: str, parent: Document | None = None, enqueue: bool = True
) -> Document:
    """Add one web page as a document (fetched by the worker) and queue it; a sitemap's page
    gets the sitemap's tags."""
    return _web_document_add(
        knowledge_base=knowledge_base,
        url=url,
        kind=Document.Kind.URL,
        parent=parent,
        enqueue=enqueue,
        tags=list(parent.tags) if parent is not None else None,
    )


@transaction.atomic
def _web_document_add(
    *,
    knowledge_base: KnowledgeBase,
    url: str,
    kind: str,
    parent: Document | None = None,
    enqueue: bool,
    tags: list[str] | None = None,
) -> Document:
    parts = urlsplit(url)
    doc, created = Document.objects.select_for_update().get_or_create(
        knowledge_base=knowledge_base,
        source=url[:1000],
        defaults={"kind": kind, "url": url[:1000], "parent": parent, "tags": tags or []},
    )
    if tags is not None and not created and tags != doc.tags:
        doc.tags = tags
        doc.save(update_fields=["tags", "updated_at"])
        if not doc.is_sitemap:
            _tags_apply_on_commit(doc)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        doc.status = Status.FAILED
        doc.error = f"Only http:// and https:// addresses can be ingested, not {url!r}."
        doc.save()
        return doc
    if len(url) > 1000:
        doc.status = Status.FAILED
        doc.error = f"The address is {len(url):,} characters long; addresses up to 1,000 characters can be ingested."
        doc.save()
        return doc
    if not created and doc.is_active:
        return doc
    doc.kind = kind
    doc.parent = parent or doc.parent
    doc.status = Status.QUEUED
    doc.error = ""
    doc.attempts = 0
    doc.lease_until = None
    doc.queued_at = timezone.now()
    doc.save()
    if enqueue:
        documents_enqueue(document_ids=[doc.pk])
    return doc


@transaction.atomic
def document_tags_set(*, document: Document, tags: Sequence[str]) -> Document:
    """Replace the tags people gave ``document`` (checked: :class:`~ingestion.tags.TagError`) and
    retag its stored chunks in place once the transaction commits: a payload update in the vector
    store, no re-embedding. A sitemap's tags go to its pages too. The tags the source gives itself
    (front matter, URL rules: ``source_tags``) stay; both reach the chunks."""
    checked = validate_tags(list(tags))
    Document.objects.filter(pk=document.pk).update(tags=checked, updated_at=timezone.now())
    document.tags = checked
    targets = [document]
    if document.is_sitemap:
        pages = list(document.pages.exclude(status=Status.DELETING))
        Document.objects.filter(pk__in=[p.pk for p in pages]).update(tags=checked)
        targets = pages
    for target in targets:
        _tags_apply_on_commit(target)
    return document


def _tags_apply_on_commit(document: Document) -> None:
    from resolvo.knowledge import jobs

    document_id = document.pk
    transaction.on_commit(lambda: jobs.document_tags_apply(document_id=document_id))


def _looks_like_sitemap(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return path.endswith(".xml") or "sitemap" in path.rsplit("/", 1)[-1]


def document_retry(*, document: Document) -> Document:
    """Queue a document again (after a failure, or to re-read a web page or sitemap)."""
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).exclude(status=Status.DELETING).update(
            status=Status.QUEUED, error="", attempts=0, lease_until=None, queued_at=timezone.now()
        )
        documents_enqueue(document_ids=[document.pk])
    document.refresh_from_db()
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Mark the document for deletion; the worker removes its points, then the row."""
    Document.objects.filter(pk=document.pk).update(status=Status.DELETING, lease_until=None)
    background.send_on_commit(background.DOCUMENT_DELETE, document.pk)


def knowledge_base_reindex(*, knowledge_base: KnowledgeBase) -> int:
    """Re-queue every document of a knowledge base (after a model or chunking change)."""
    ids = list(knowledge_base.documents.exclude(status=Status.DELETING).values_list("pk", flat=True))
    return documents_reindex(document_ids=ids)


def documents_reindex(*, document_ids: list[int]) -> int:
    """Queue the given documents to be read, split and embedded again from their stored originals
    (web pages are fetched again); returns how many were queued (a document being deleted is not).

    Idempotent and cheap to repeat: indexing embeds only the chunks the vector store does not hold
    yet (deterministic point ids), so re-running after an interruption, or into a store that kept
    some of its points, costs the parsing but not the embedding of what is already there."""
    with transaction.atomic():
        ids = list(
            Document.objects.filter(pk__in=document_ids).exclude(status=Status.DELETING).values_list("pk", flat=True)
        )
        Document.objects.filter(pk__in=ids).update(
            status=Status.QUEUED, indexed_hash="", error="", attempts=0, lease_until=None, queued_at=timezone.now()
        )
        documents_enqueue(document_ids=ids)
    return len(ids)
