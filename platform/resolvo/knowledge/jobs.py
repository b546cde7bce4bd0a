"""The ingestion job: a document row taken by a worker, run to ``indexed`` or ``failed``.

Each step records its outcome on the row (STYLE 6): claim (a conditional update, so one run holds
a document at a time), prepare (read, parse, split), index (embed and store), fail (a reason a
person can read), requeue (transient trouble), recover stalled jobs, and the delete run. A sitemap
is a job too: its run reads the sitemap and adds each page as a document of its own.

Tasks in ``workers/tasks.py`` call the ``*_run`` functions here with ids; nothing else does. The
writes people start (upload, add a URL, retry, delete) are in :mod:`resolvo.knowledge.services`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ingestion.index import DocumentRef, index_documents
from ingestion.types import Chunk, IngestionError, TransientError
from resolvo.knowledge import services, vectors
from resolvo.knowledge.models import Document

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
Status = Document.Status
ACTIVE = (Status.QUEUED, Status.PARSING, Status.EMBEDDING)


@dataclass(frozen=True)
class IngestOutcome:
    status: str
    chunks: int = 0
    embedded: int = 0
    deleted: int = 0


class RetryDocuments(TransientError):
    """Some documents of a batch hit a transient problem; retry just those."""

    def __init__(self, document_ids: list[int], message: str) -> None:
        super().__init__(message)
        self.document_ids = document_ids


def documents_recover_stalled() -> int:
    """Re-queue documents whose worker died (lease expired mid-run). Run periodically by beat."""
    now = timezone.now()
    stalled = list(
        Document.objects.filter(status__in=[Status.PARSING, Status.EMBEDDING], lease_until__lt=now).values_list(
            "pk", flat=True
        )
    )
    with transaction.atomic():
        services.documents_enqueue(document_ids=stalled)
    return len(stalled)


def document_fail(*, document_id: int, message: str) -> IngestOutcome:
    """Record a final failure with a reason a person can read."""
    Document.objects.filter(pk=document_id).update(
        status=Status.FAILED, error=message, lease_until=None, finished_at=timezone.now()
    )
    return IngestOutcome(Status.FAILED)


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
            if doc.is_sitemap:
                outcomes[document_id] = _crawl(doc)
            else:
                prepared.append(_prepare(doc))
        except IngestionError as exc:
            outcomes[document_id] = document_fail(document_id=document_id, message=_failure_message(doc, exc))
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


# --- steps ------------------------------------------------------------------------------------


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


def _failure_message(doc: Document, exc: IngestionError) -> str:
    if doc.is_sitemap:
        return f"The sitemap could not be read: {exc}"
    return str(exc)


def _crawl(doc: Document) -> IngestOutcome:
    """Read a sitemap (same host, bounded) and add each page as a document of its own."""
    from ingestion.parse.fetch import crawl_sitemap

    pages = crawl_sitemap(
        doc.source,
        max_pages=settings.INGEST_SITEMAP_MAX_PAGES,
        max_bytes=settings.INGEST_SITEMAP_MAX_BYTES,
        timeout=settings.INGEST_FETCH_TIMEOUT,
        allow_private=settings.INGEST_ALLOW_PRIVATE_NETWORKS,
    )
    with transaction.atomic():
        added = [
            services.document_add_url(knowledge_base=doc.knowledge_base, url=page, parent=doc, enqueue=False)
            for page in pages
        ]
        services.documents_enqueue(document_ids=[d.pk for d in added if d.status == Status.QUEUED])
        Document.objects.filter(pk=doc.pk).update(
            status=Status.INDEXED,
            title=f"Sitemap: {len(pages)} page(s)",
            chunk_count=0,
            chunks_done=0,
            lease_until=None,
            finished_at=timezone.now(),
        )
    return IngestOutcome(Status.INDEXED)


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


def _index(prepared: list[_Prepared]) -> dict[int, IngestOutcome]:
    by_ref = {p.ref.document: p for p in prepared}
    last_write: dict[str, float] = {}

    def progress(ref: DocumentRef, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last_write.get(ref.document, 0.0) < 0.5:
            return  # at most two progress writes a second per document
        last_write[ref.document] = now
        Document.objects.filter(pk=int(ref.document)).update(chunks_done=done, lease_until=timezone.now() + LEASE)

    store = vectors.get_store()
    try:
        results = index_documents(
            store=store,
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
            store.delete_where(org=p.ref.org, document=p.ref.document)
        outcomes[p.doc.pk] = IngestOutcome(str(current or "missing"))
    return outcomes
