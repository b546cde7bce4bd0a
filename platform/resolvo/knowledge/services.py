"""Writes for knowledge bases and documents. Views, commands, admin and tasks call these."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ingestion.index import DocumentRef, index_documents
from ingestion.sizes import format_size
from ingestion.types import Chunk, IngestionError, TransientError
from resolvo.knowledge import vectors
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import Organization

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
Status = Document.Status


def knowledge_base_get(*, organization: Organization, name: str, create: bool = False) -> KnowledgeBase:
    if create:
        kb, _ = KnowledgeBase.objects.get_or_create(organization=organization, name=name)
        return kb
    return KnowledgeBase.objects.get(organization=organization, name=name)


def _enqueue_ingest(document_id: int) -> None:
    documents_enqueue(document_ids=[document_id])


def documents_enqueue(*, document_ids: list[int]) -> None:
    """Queue ingestion once the current transaction commits, several documents per task.

    One document alone is sent as ``document_ingest``; more are grouped so the embedding model
    runs full batches (``INGEST_BATCH_DOCUMENTS`` per task).
    """
    from workers.tasks import document_ingest, document_ingest_batch

    ids = list(document_ids)
    size = settings.INGEST_BATCH_DOCUMENTS

    def send() -> None:
        if len(ids) == 1:
            document_ingest.delay(ids[0])
            return
        for start in range(0, len(ids), size):
            document_ingest_batch.delay(ids[start : start + size])

    if ids:
        transaction.on_commit(send)


@transaction.atomic
def document_upload(
    *,
    knowledge_base: KnowledgeBase,
    filename: str,
    content: bytes,
    url: str = "",
    declared_size: int | None = None,
    enqueue: bool = True,
) -> Document:
    """Add or replace the document named ``filename`` and queue it for ingestion.

    Re-uploading identical bytes changes nothing. Changed bytes bump the version; the worker
    replaces the old chunks. A file over the size limit is recorded as failed, with the reason
    (callers may pass only the first limit+1 bytes of a huge upload and its ``declared_size``).
    With ``enqueue=False`` the caller queues the document itself (see :func:`documents_enqueue`).
    """
    source = PurePath(filename).name or "untitled"
    digest = hashlib.sha256(content).hexdigest()
    doc = Document.objects.select_for_update().filter(knowledge_base=knowledge_base, source=source).first()
    if doc is not None and doc.content_hash == digest and doc.status != Status.FAILED:
        return doc
    if doc is None:
        doc = Document(knowledge_base=knowledge_base, source=source, kind=Document.Kind.FILE)
    elif doc.content_hash != digest:
        doc.version += 1
    doc.byte_size = len(content)
    doc.content_hash = digest
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
        _enqueue_ingest(doc.pk)
    return doc


@transaction.atomic
def document_add_url(*, knowledge_base: KnowledgeBase, url: str) -> Document:
    """Add a web page as a document (fetched by the worker) and queue it."""
    parts = urlsplit(url)
    doc, created = Document.objects.select_for_update().get_or_create(
        knowledge_base=knowledge_base, source=url, defaults={"kind": Document.Kind.URL, "url": url}
    )
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        doc.status = Status.FAILED
        doc.error = f"Only http:// and https:// addresses can be ingested, not {url!r}."
        doc.save()
        return doc
    if not created and doc.is_active:
        return doc
    doc.status = Status.QUEUED
    doc.error = ""
    doc.lease_until = None
    doc.queued_at = timezone.now()
    doc.save()
    _enqueue_ingest(doc.pk)
    return doc


def source_sync(*, knowledge_base: KnowledgeBase, url: str, retry_transient: bool = False) -> list[Document]:
    """Crawl a sitemap (same host, bounded) and add each page; a plain page is added as is.

    A sitemap that cannot be read is recorded as a failed document named by its URL, so the
    admin sees why nothing arrived. With ``retry_transient`` a temporary failure is raised for
    the task to retry instead.
    """
    from ingestion.parse.fetch import crawl_sitemap

    if not _looks_like_sitemap(url):
        return [document_add_url(knowledge_base=knowledge_base, url=url)]
    try:
        pages = crawl_sitemap(
            url,
            max_pages=settings.INGEST_SITEMAP_MAX_PAGES,
            max_bytes=settings.INGEST_SITEMAP_MAX_BYTES,
            timeout=settings.INGEST_FETCH_TIMEOUT,
            allow_private=settings.INGEST_ALLOW_PRIVATE_NETWORKS,
        )
    except TransientError as exc:
        if retry_transient:
            raise
        return [_record_failed_source(knowledge_base, url, f"The sitemap could not be read: {exc}")]
    except IngestionError as exc:
        return [_record_failed_source(knowledge_base, url, f"The sitemap could not be read: {exc}")]
    Document.objects.filter(knowledge_base=knowledge_base, source=url, status=Status.FAILED).delete()
    return [document_add_url(knowledge_base=knowledge_base, url=page) for page in pages]


def _record_failed_source(knowledge_base: KnowledgeBase, url: str, message: str) -> Document:
    doc, _ = Document.objects.update_or_create(
        knowledge_base=knowledge_base,
        source=url,
        defaults={"kind": Document.Kind.URL, "url": url[:1000], "status": Status.FAILED, "error": message},
    )
    return doc


def _looks_like_sitemap(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return path.endswith(".xml") or "sitemap" in path.rsplit("/", 1)[-1]


def document_retry(*, document: Document) -> Document:
    Document.objects.filter(pk=document.pk).update(
        status=Status.QUEUED, error="", lease_until=None, queued_at=timezone.now()
    )
    with transaction.atomic():
        _enqueue_ingest(document.pk)
    document.refresh_from_db()
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Mark the document for deletion; the worker removes its points, then the row."""
    from workers.tasks import document_delete as delete_task

    Document.objects.filter(pk=document.pk).update(status=Status.DELETING, lease_until=None)
    document_id = document.pk
    transaction.on_commit(lambda: delete_task.delay(document_id))


def document_delete_run(*, document_id: int) -> bool:
    """Delete the document's points, its file and its row. Idempotent; False if already gone."""
    doc = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if doc is None:
        return False
    vectors.get_store().delete_where(org=str(doc.knowledge_base.organization_id), document=str(doc.pk))
    if doc.file:
        doc.file.delete(save=False)
    doc.delete()
    return True


def knowledge_base_reindex(*, knowledge_base: KnowledgeBase) -> int:
    """Re-queue every document of a knowledge base (after a model or chunking change)."""
    ids = list(knowledge_base.documents.exclude(status=Status.DELETING).values_list("pk", flat=True))
    Document.objects.filter(pk__in=ids).update(
        status=Status.QUEUED, indexed_hash="", error="", lease_until=None, queued_at=timezone.now()
    )
    with transaction.atomic():
        documents_enqueue(document_ids=ids)
    return len(ids)


def documents_recover_stalled() -> int:
    """Re-queue documents whose worker died (lease expired mid-run). Run periodically by beat."""
    now = timezone.now()
    stalled = list(
        Document.objects.filter(status__in=[Status.PARSING, Status.EMBEDDING], lease_until__lt=now).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        documents_enqueue(document_ids=stalled)
    return len(stalled)


# --- The ingestion job itself ----------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    status: str
    chunks: int = 0
    embedded: int = 0
    deleted: int = 0


def _claim(document_id: int) -> Document | None:
    """Take the job: queued, or abandoned by a dead worker (lease expired). None if not ours."""
    now = timezone.now()
    claimed = (
        Document.objects.filter(pk=document_id)
        .filter(
            Q(status=Status.QUEUED)
            | Q(status__in=[Status.PARSING, Status.EMBEDDING], lease_until__lt=now)
            | Q(status__in=[Status.PARSING, Status.EMBEDDING], lease_until__isnull=True)
        )
        .update(
            status=Status.PARSING,
            lease_until=now + LEASE,
            started_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
    )
    if not claimed:
        return None
    return Document.objects.select_related("knowledge_base").get(pk=document_id)


def _read_source(doc: Document) -> tuple[bytes, str, str]:
    """(bytes, file name for type detection, mime type or '') for a document."""
    if doc.kind == Document.Kind.URL:
        from ingestion.parse.fetch import fetch_url

        page = fetch_url(
            doc.source,
            timeout=settings.INGEST_FETCH_TIMEOUT,
            max_bytes=settings.INGEST_MAX_BYTES,
            allow_private=settings.INGEST_ALLOW_PRIVATE_NETWORKS,
        )
        return page.content, page.filename, page.content_type
    if not doc.file:
        raise IngestionError("The uploaded file is missing from storage; upload it again.")
    with doc.file.open("rb") as fh:
        return fh.read(), doc.source, ""


def document_fail(*, document_id: int, message: str) -> IngestOutcome:
    """Record a final failure with a reason a person can read."""
    Document.objects.filter(pk=document_id).update(
        status=Status.FAILED, error=message, lease_until=None, finished_at=timezone.now()
    )
    return IngestOutcome(Status.FAILED)


class RetryDocuments(TransientError):
    """Some documents of a batch hit a transient problem; retry just those."""

    def __init__(self, document_ids: list[int], message: str) -> None:
        super().__init__(message)
        self.document_ids = document_ids


@dataclass
class _Prepared:
    doc: Document
    ref: DocumentRef
    chunks: list[Chunk]


def _prepare(doc: Document) -> _Prepared:
    """Read, parse and split one claimed document; record what was found on its row."""
    from ingestion.parse import parse_bytes

    t0 = time.perf_counter()
    data, filename, mime = _read_source(doc)
    if doc.kind == Document.Kind.URL:
        digest = hashlib.sha256(data).hexdigest()
        if digest != doc.content_hash and doc.content_hash:
            doc.version += 1
        doc.content_hash, doc.byte_size = digest, len(data)
    parsed = parse_bytes(data, filename=filename, mime_type=mime or None, max_bytes=settings.INGEST_MAX_BYTES)
    chunks = vectors.splitter().split(parsed)
    if not chunks:
        raise IngestionError("No text could be extracted from this document.")
    title = str(parsed.metadata.get("title") or parsed.title or doc.source)[:500]
    url = doc.url or str(parsed.metadata.get("url") or parsed.metadata.get("section_url") or "")
    Document.objects.filter(pk=doc.pk).update(
        status=Status.EMBEDDING,
        title=title,
        url=url[:1000],
        mime_type=parsed.mime_type,
        chunk_count=len(chunks),
        chunks_done=0,
        parse_ms=int((time.perf_counter() - t0) * 1000),
        version=doc.version,
        content_hash=doc.content_hash,
        byte_size=doc.byte_size,
    )
    ref = DocumentRef(
        org=str(doc.knowledge_base.organization_id),
        kb=str(doc.knowledge_base_id),
        document=str(doc.pk),
        source=doc.source,
        title=title,
        url=url,
    )
    return _Prepared(doc, ref, chunks)


def _requeue(document_ids: list[int]) -> None:
    Document.objects.filter(pk__in=document_ids, status__in=[Status.PARSING, Status.EMBEDDING]).update(
        status=Status.QUEUED, lease_until=None
    )


def document_ingest_run(*, document_id: int) -> IngestOutcome:
    """Ingest one document; see :func:`documents_ingest_run`."""
    return documents_ingest_run(document_ids=[document_id])[document_id]


def documents_ingest_run(*, document_ids: list[int]) -> dict[int, IngestOutcome]:
    """Parse, split, embed and index documents, recording progress on each row.

    Documents are embedded together so the model runs full batches. Each document fails on
    its own with a reason a person can read; transient problems raise :class:`RetryDocuments`
    naming the documents to retry. Safe to run twice: claims let one run hold a document at a
    time, and indexing skips chunks that are already stored.
    """
    outcomes: dict[int, IngestOutcome] = {}
    prepared: list[_Prepared] = []
    retry: list[int] = []
    retry_reason = ""
    for document_id in document_ids:
        doc = _claim(document_id)
        if doc is None:
            current = Document.objects.filter(pk=document_id).values_list("status", flat=True).first()
            outcomes[document_id] = IngestOutcome(str(current or "missing"))
            continue
        try:
            prepared.append(_prepare(doc))
        except IngestionError as exc:
            outcomes[document_id] = document_fail(document_id=document_id, message=str(exc))
        except TransientError as exc:
            retry.append(document_id)
            retry_reason = str(exc)
        except Exception as exc:
            log.exception("parsing document %s failed", document_id)
            outcomes[document_id] = document_fail(
                document_id=document_id,
                message=f"Internal error while reading the document ({type(exc).__name__}: {exc}).",
            )
    if prepared:
        outcomes.update(_index(prepared))
    if retry:
        _requeue(retry)
        raise RetryDocuments(retry, retry_reason)
    return outcomes


def _index(prepared: list[_Prepared]) -> dict[int, IngestOutcome]:
    by_ref = {p.ref.document: p for p in prepared}
    last_write: dict[str, float] = {}

    def progress(ref: DocumentRef, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last_write.get(ref.document, 0.0) < 0.5:
            return  # at most two progress writes a second per document
        last_write[ref.document] = now
        Document.objects.filter(pk=int(ref.document)).update(chunks_done=done, lease_until=timezone.now() + LEASE)

    try:
        results = index_documents(
            store=vectors.get_store(),
            embedder=vectors.embedder(),
            sparse=vectors.sparse_encoder(),
            documents=[(p.ref, p.chunks) for p in prepared],
            on_progress=progress,
        )
    except TransientError as exc:
        ids = [p.doc.pk for p in prepared]
        _requeue(ids)
        raise RetryDocuments(ids, str(exc)) from exc
    except Exception as exc:
        log.exception("indexing documents %s failed", list(by_ref))
        return {
            p.doc.pk: document_fail(
                document_id=p.doc.pk, message=f"Internal error while indexing ({type(exc).__name__}: {exc})."
            )
            for p in prepared
        }
    outcomes: dict[int, IngestOutcome] = {}
    for p, result in zip(prepared, results, strict=True):
        updated = Document.objects.filter(pk=p.doc.pk, status=Status.EMBEDDING).update(
            status=Status.INDEXED,
            indexed_hash=p.doc.content_hash,
            chunks_done=len(p.chunks),
            embed_ms=int(result.embed_seconds * 1000),
            index_ms=int(result.store_seconds * 1000),
            finished_at=timezone.now(),
            lease_until=None,
        )
        if updated:
            outcomes[p.doc.pk] = IngestOutcome(Status.INDEXED, len(p.chunks), result.embedded, result.deleted)
            continue
        # Deleted or re-queued while we worked; the newer request decides what stays. A delete
        # that ran before our last upsert would otherwise leave orphan points behind.
        current = Document.objects.filter(pk=p.doc.pk).values_list("status", flat=True).first()
        if current in (None, Status.DELETING):
            vectors.get_store().delete_where(org=p.ref.org, document=p.ref.document)
        outcomes[p.doc.pk] = IngestOutcome(str(current or "missing"))
    return outcomes
