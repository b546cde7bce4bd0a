"""The ingestion job: a document row taken by a worker, run to ``indexed`` or ``failed``.

Each step records its outcome on the row (STYLE 6): claim (a conditional update, so one run holds
a document at a time), prepare (read, parse, split), index (embed and store), fail (a reason a
person can read), requeue (transient trouble), recover stalled jobs, and the delete run. A sitemap
is a job too: its run reads the sitemap and adds each page as a document of its own.

Tasks in ``workers/tasks.py`` call the ``*_run`` functions here with ids; nothing else does. The
writes people start (upload, add a URL, retry, delete) are in :mod:`resolvo.knowledge.services`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ingestion.index import DocumentRef, document_tags_set, index_documents
from ingestion.store import VectorStore
from ingestion.tags import merge_tags, tags_for_url, tags_from_metadata
from ingestion.types import Chunk, IngestionError, TransientError
from resolvo.knowledge import services, vectors
from resolvo.knowledge.models import Document
from resolvo.observability.metrics import document_finished
from resolvo.webhooks.services import event_emit

log = logging.getLogger(__name__)

Status = Document.Status
ACTIVE = (Status.QUEUED, Status.PARSING, Status.EMBEDDING)
RUNNING = (Status.PARSING, Status.EMBEDDING)


def _lease() -> timedelta:
    return timedelta(seconds=settings.INGEST_LEASE_SECONDS)


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


class LeaseLost(Exception):
    """Another run took the document over (this run's lease ran out); stop writing to it."""


@dataclass(frozen=True)
class Busy:
    """Documents another run holds a live lease on, and how long until the last lease runs out.

    A redelivered task (its worker died) finds the dead worker's lease still live; it tries again
    once the lease has run out instead of dropping the document (see ``workers/tasks.py``)."""

    document_ids: list[int]
    seconds: float


def documents_recover_stalled(
    *, document_ids: list[int] | None = None, orphaned: Literal["none", "queued", "all"] = "none"
) -> int:
    """Send again the documents nobody is working on. Run every ``INGEST_SWEEP_SECONDS`` by beat.

    Two kinds: a run whose worker died (``parsing``/``embedding`` with its lease run out), and a
    ``queued`` document whose message was lost with its worker (queued for longer than
    ``INGEST_QUEUED_STALE_SECONDS``; each is sent again at most once per that interval).
    ``orphaned`` is for a caller that knows more: ``"queued"`` when no message can be waiting for
    its queued documents (the embedded mode, where the caller itself is the worker), ``"all"``
    when no other process can be working either (the embedded mode starting up; leases are
    ignored and their tokens raised, so a run that somehow survived can no longer write).
    ``document_ids`` limits the sweep to those documents (``ingest --wait``).
    """
    now = timezone.now()
    scope = Document.objects.all() if document_ids is None else Document.objects.filter(pk__in=document_ids)
    stale = now - timedelta(seconds=settings.INGEST_QUEUED_STALE_SECONDS)
    if orphaned == "all":
        stalled = Q(status__in=ACTIVE)
    else:
        stalled = (
            Q(status__in=RUNNING, lease_until__lt=now)
            | Q(status__in=RUNNING, lease_until__isnull=True)
            | Q(status=Status.QUEUED, queued_at__isnull=True)
            | Q(status=Status.QUEUED, queued_at__lt=now if orphaned == "queued" else stale)
        )
    with transaction.atomic():
        ids = list(scope.filter(stalled).values_list("pk", flat=True))
        Document.objects.filter(pk__in=ids).update(
            status=Status.QUEUED, lease_until=None, queued_at=now, lease_token=F("lease_token") + 1
        )
        services.documents_enqueue(document_ids=ids)
    if ids:
        log.warning("sent again %d document(s) nobody was working on: %s", len(ids), ids[:20])
    return len(ids)


def document_fail(*, document_id: int, message: str, token: int | None = None) -> IngestOutcome:
    """Record a final failure with a reason a person can read (only while ``token`` is still the
    document's lease token, when given: a run that lost its lease does not overwrite)."""
    rows = Document.objects.filter(pk=document_id)
    if token is not None:
        rows = rows.filter(lease_token=token)
    with transaction.atomic():
        if rows.update(status=Status.FAILED, error=message, lease_until=None, finished_at=timezone.now()):
            _finished(document_id, "document.failed")
    return IngestOutcome(Status.FAILED)


def _finished(document_id: int, event: Literal["document.indexed", "document.failed"]) -> None:
    """Tell the organization's webhooks that the document reached ``indexed`` or ``failed``.
    Caller is in the transaction that wrote the status."""
    status = "indexed" if event == "document.indexed" else "failed"
    transaction.on_commit(lambda: document_finished(status=status))  # metrics
    doc = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if doc is not None:
        event_emit(organization_id=doc.organization_id, type=event, data=document_as_event(doc))


def document_as_event(doc: Document) -> dict[str, object]:
    """A document as webhooks name it."""
    return {
        "id": doc.pk,
        "knowledge_base": doc.knowledge_base_id,
        "kind": doc.kind,
        "source": doc.source,
        "title": doc.title,
        "url": doc.url,
        "status": doc.status,
        "error": doc.error,
        "chunk_count": doc.chunk_count,
        "version": doc.version,
        "finished_at": doc.finished_at.isoformat() if doc.finished_at else None,
    }


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


def documents_ingest_run(*, document_ids: list[int], busy: list[Busy] | None = None) -> dict[int, IngestOutcome]:
    """Parse, split, embed and index documents, recording progress on each row.

    Documents are embedded together so the model runs full batches. Each document fails on
    its own with a reason a person can read; transient problems raise :class:`RetryDocuments`
    naming the documents to retry. Safe to run twice: claims let one run hold a document at a
    time (fenced by the lease token), and indexing skips chunks that are already stored.
    Documents another run holds a live lease on are appended to ``busy`` when given.
    """
    outcomes: dict[int, IngestOutcome] = {}
    held: dict[int, int] = {}
    with _heartbeat(held):
        prepared: list[_Prepared] = []
        retry: list[int] = []
        retry_reason = ""
        waiting: list[int] = []
        wait_s = 0.0
        for document_id in document_ids:
            claim = _claim(document_id)
            if isinstance(claim, _Taken):
                current = Document.objects.filter(pk=document_id).values_list("status", flat=True).first()
                outcomes[document_id] = IngestOutcome(str(current or "missing"))
                if claim.seconds_left is not None:
                    waiting.append(document_id)
                    wait_s = max(wait_s, claim.seconds_left)
                continue
            doc = claim
            held[doc.pk] = doc.lease_token
            try:
                if doc.is_sitemap:
                    outcomes[document_id] = _crawl(doc)
                    held.pop(doc.pk)
                else:
                    prepared.append(_prepare(doc))
            except LeaseLost:
                held.pop(doc.pk, None)
                outcomes[document_id] = IngestOutcome("taken over")
            except IngestionError as exc:
                held.pop(doc.pk, None)
                outcomes[document_id] = document_fail(
                    document_id=document_id, message=_failure_message(doc, exc), token=doc.lease_token
                )
            except TransientError as exc:
                retry.append(document_id)
                retry_reason = str(exc)
            except Exception as exc:
                held.pop(doc.pk, None)
                log.exception("parsing document %s failed", document_id)
                outcomes[document_id] = document_fail(
                    document_id=document_id,
                    message=f"Internal error while reading the document ({type(exc).__name__}: {exc}).",
                    token=doc.lease_token,
                )
        if prepared:
            outcomes.update(_index(prepared))
        if retry:
            _requeue({i: held[i] for i in retry})
            raise RetryDocuments(retry, retry_reason)
    if waiting and busy is not None:
        busy.append(Busy(waiting, wait_s))
    return outcomes


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Taken:
    """Not ours: finished, gone, or held by another run (``seconds_left`` on its live lease)."""

    seconds_left: float | None = None


def _claim(document_id: int) -> Document | _Taken:
    """Take the job: queued, or abandoned by a dead worker (lease run out). Each claim raises the
    lease token (fencing: the run it was taken from can no longer write) and counts an attempt;
    past ``INGEST_MAX_ATTEMPTS`` the document fails with a reason instead of running again."""
    now = timezone.now()
    claimable = Document.objects.filter(pk=document_id).filter(
        Q(status=Status.QUEUED)
        | Q(status__in=RUNNING, lease_until__lt=now)
        | Q(status__in=RUNNING, lease_until__isnull=True)
    )
    claimed = claimable.filter(attempts__lt=settings.INGEST_MAX_ATTEMPTS).update(
        status=Status.PARSING,
        lease_until=now + _lease(),
        lease_token=F("lease_token") + 1,
        started_at=now,
        attempts=F("attempts") + 1,
        error="",
        warnings="",
    )
    if not claimed:
        # One write on the common path; the cap is only looked at when the claim did not happen.
        with transaction.atomic():
            exhausted = claimable.update(
                status=Status.FAILED,
                lease_until=None,
                finished_at=now,
                lease_token=F("lease_token") + 1,
                error=(
                    f"Stopped after {settings.INGEST_MAX_ATTEMPTS} attempts: each time, the worker reading this "
                    "document stopped before it finished (it was killed, ran out of memory or was restarted). Try a "
                    "smaller or simpler file, or retry it once the workers are healthy."
                ),
            )
            if exhausted:
                _finished(document_id, "document.failed")
        if exhausted:
            return _Taken()
    if claimed:
        return Document.objects.select_related("knowledge_base").get(pk=document_id)
    held = Document.objects.filter(pk=document_id, status__in=RUNNING, lease_until__gte=now).values_list(
        "lease_until", flat=True
    )
    lease_until = held.first()
    return _Taken((lease_until - now).total_seconds() if lease_until else None)


def _mine(doc: Document) -> QuerySet[Document]:
    """The document's row, as long as this run still holds it (fencing by the lease token)."""
    return Document.objects.filter(pk=doc.pk, lease_token=doc.lease_token)


@contextmanager
def _heartbeat(held: dict[int, int]) -> Iterator[None]:
    """Renew the leases in ``held`` ({document id: lease token}) every ``INGEST_HEARTBEAT_SECONDS``
    from a thread of its own, through every stage (reading, parsing, embedding), so a lease runs
    out only when the worker holding it is gone."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.INGEST_HEARTBEAT_SECONDS):
                until = timezone.now() + _lease()
                for document_id, token in list(held.items()):
                    Document.objects.filter(pk=document_id, lease_token=token, status__in=RUNNING).update(
                        lease_until=until
                    )
        except Exception:
            log.exception("lease heartbeat failed; the leases will run out and the documents be taken over")
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name="ingest-lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


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
        if _mine(doc).update(
            status=Status.INDEXED,
            title=f"Sitemap: {len(pages)} page(s)",
            chunk_count=0,
            chunks_done=0,
            lease_until=None,
            finished_at=timezone.now(),
        ):
            _finished(doc.pk, "document.indexed")
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
    """Read, parse and split one claimed document; record what was found on its row.

    Parsing runs in a child process under ``INGEST_PARSE_SECONDS`` and ``INGEST_PARSE_MEMORY_MB``;
    a document that would split into more than ``INGEST_MAX_CHUNKS`` chunks is refused before
    anything is embedded."""
    from ingestion.parse.bounded import ParseLimits, parse_bounded

    t0 = time.perf_counter()
    data, filename, mime = _read_source(doc)
    if doc.kind == Document.Kind.URL:
        digest = hashlib.sha256(data).hexdigest()
        if digest != doc.content_hash and doc.content_hash:
            doc.version += 1
        doc.content_hash, doc.byte_size = digest, len(data)
    limits = ParseLimits(
        seconds=settings.INGEST_PARSE_SECONDS,
        memory_bytes=settings.INGEST_PARSE_MEMORY_MB * 1024 * 1024,
        inline_max_bytes=settings.INGEST_PARSE_INLINE_MAX_BYTES,
    )
    parsed = parse_bounded(
        data, filename=filename, mime_type=mime or None, max_bytes=settings.INGEST_MAX_BYTES, limits=limits
    )
    splitter = vectors.splitter()
    _check_chunk_budget(len(parsed.text) // (4 * splitter.config.target_tokens), estimated=True)
    split = splitter.split_document(parsed)
    chunks = split.chunks
    if not chunks:
        raise IngestionError("No text could be extracted from this document.")
    _check_chunk_budget(len(chunks), estimated=False)
    title = str(parsed.metadata.get("title") or parsed.title or doc.source)[:500]
    url = doc.url or str(parsed.metadata.get("url") or parsed.metadata.get("section_url") or "")
    source_tags = merge_tags(tags_from_metadata(parsed.metadata), _url_rule_tags(doc))
    updated = _mine(doc).update(
        source_tags=source_tags,
        warnings=" ".join([*_name_notes(doc), *split.notes]),
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
    if not updated:
        raise LeaseLost(doc.pk)
    ref = DocumentRef(
        org=str(doc.knowledge_base.organization_id),
        kb=str(doc.knowledge_base_id),
        document=str(doc.pk),
        source=doc.source,
        title=title,
        url=url,
        tags=tuple(merge_tags(doc.tags or [], source_tags)),
    )
    return _Prepared(doc, ref, chunks)


def _url_rule_tags(doc: Document) -> list[str]:
    """The tags the knowledge base's URL rules give a web page (``KnowledgeBase.url_tag_rules``)."""
    if doc.kind != Document.Kind.URL or not doc.knowledge_base.url_tag_rules:
        return []
    return tags_for_url(doc.source, doc.knowledge_base.url_tag_rules)


def document_tags_apply(*, document_id: int) -> bool:
    """Give the document's stored points its current tags, in place: one payload update in the
    vector store, nothing re-embedded. Called after the tags changed (admin edit, API, re-upload
    of the same bytes); a run indexing the document at that moment applies them again when it
    finishes (see :func:`_index`). False when the document is gone."""
    doc = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if doc is None or doc.is_sitemap:
        return False
    document_tags_set(store=vectors.get_store(), ref=_tags_ref(doc, doc.all_tags))
    return True


def _tags_ref(doc: Document, tags: list[str]) -> DocumentRef:
    return DocumentRef(
        org=str(doc.knowledge_base.organization_id),
        kb=str(doc.knowledge_base_id),
        document=str(doc.pk),
        source=doc.source,
        title=doc.title,
        tags=tuple(tags),
    )


def _check_chunk_budget(chunks: int, *, estimated: bool) -> None:
    limit = settings.INGEST_MAX_CHUNKS
    # The estimate (about four characters a word piece) only refuses what is far over the limit,
    # before the splitter spends minutes on it; the exact count decides the rest.
    if (estimated and chunks > 2 * limit) or (not estimated and chunks > limit):
        about = "about " if estimated else ""
        raise IngestionError(
            f"This document would split into {about}{chunks:,} chunks, over the limit of {limit:,} per document "
            "(INGEST_MAX_CHUNKS). Split it into smaller files, or ask the operator to raise the limit."
        )


def _name_notes(doc: Document) -> list[str]:
    original = doc.original_name
    if original and original != doc.source:
        return [f"The file name was {len(original):,} characters long and was shortened to {doc.source!r}."]
    return []


def _requeue(held: dict[int, int]) -> None:
    for document_id, token in held.items():
        Document.objects.filter(pk=document_id, lease_token=token, status__in=RUNNING).update(
            status=Status.QUEUED, lease_until=None
        )


def _reconcile_tags(store: VectorStore, p: _Prepared) -> None:
    """Tags edited while the run embedded (the run wrote the ones it read at the start)."""
    current = Document.objects.filter(pk=p.doc.pk).values_list("tags", "source_tags").first()
    if current is not None and (tags := merge_tags(current[0] or [], current[1] or [])) != list(p.ref.tags):
        document_tags_set(store=store, ref=dataclasses.replace(p.ref, tags=tuple(tags)))


def _index(prepared: list[_Prepared]) -> dict[int, IngestOutcome]:
    by_ref = {p.ref.document: p for p in prepared}
    last_write: dict[str, float] = {}

    tokens = {p.ref.document: p.doc.lease_token for p in prepared}

    def progress(ref: DocumentRef, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last_write.get(ref.document, 0.0) < 0.5:
            return  # at most two progress writes a second per document
        last_write[ref.document] = now
        mine = Document.objects.filter(pk=int(ref.document), lease_token=tokens[ref.document]).update(
            chunks_done=done, lease_until=timezone.now() + _lease()
        )
        if not mine:
            # Taken over (this run's lease ran out) or deleted: stop before writing any further.
            raise LeaseLost(ref.document)

    store = vectors.get_store()
    try:
        results = index_documents(
            store=store,
            embedder=vectors.embedder(),
            sparse=vectors.sparse_encoder(),
            documents=[(p.ref, p.chunks) for p in prepared],
            multilingual=vectors.multilingual_embedder(),
            on_progress=progress,
        )
    except TransientError as exc:
        _requeue({p.doc.pk: p.doc.lease_token for p in prepared})
        raise RetryDocuments([p.doc.pk for p in prepared], str(exc)) from exc
    except LeaseLost:
        log.warning("documents %s were taken over by another run; this run stops", list(by_ref))
        return {p.doc.pk: IngestOutcome("taken over") for p in prepared}
    except Exception as exc:
        log.exception("indexing documents %s failed", list(by_ref))
        return {
            p.doc.pk: document_fail(
                document_id=p.doc.pk,
                message=f"Internal error while indexing ({type(exc).__name__}: {exc}).",
                token=p.doc.lease_token,
            )
            for p in prepared
        }
    outcomes: dict[int, IngestOutcome] = {}
    for p, result in zip(prepared, results, strict=True):
        with transaction.atomic():
            updated = (
                _mine(p.doc)
                .filter(status=Status.EMBEDDING)
                .update(
                    status=Status.INDEXED,
                    indexed_hash=p.doc.content_hash,
                    chunks_done=len(p.chunks),
                    embed_ms=int(result.embed_seconds * 1000),
                    index_ms=int(result.store_seconds * 1000),
                    finished_at=timezone.now(),
                    lease_until=None,
                )
            )
            if updated:
                _finished(p.doc.pk, "document.indexed")
        if updated:
            _reconcile_tags(store, p)
            outcomes[p.doc.pk] = IngestOutcome(Status.INDEXED, len(p.chunks), result.embedded, result.deleted)
            continue
        # Deleted or re-queued while we worked; the newer request decides what stays. A delete
        # that ran before our last upsert would otherwise leave orphan points behind.
        current = Document.objects.filter(pk=p.doc.pk).values_list("status", flat=True).first()
        if current in (None, Status.DELETING):
            store.delete_where(org=p.ref.org, document=p.ref.document)
        outcomes[p.doc.pk] = IngestOutcome(str(current or "missing"))
    return outcomes
