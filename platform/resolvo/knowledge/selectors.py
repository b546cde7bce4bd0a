"""Reads for knowledge bases and documents."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from resolvo.knowledge.models import Document, KnowledgeBase


def documents_for_kb(*, knowledge_base: KnowledgeBase) -> QuerySet[Document]:
    return knowledge_base.documents.order_by("source")


@dataclass(frozen=True)
class KnowledgeBaseSummary:
    documents: int
    indexed: int
    failed: int
    in_progress: int
    chunks: int
    chunks_done: int


def knowledge_base_summary(*, knowledge_base: KnowledgeBase) -> KnowledgeBaseSummary:
    S = Document.Status
    agg = knowledge_base.documents.aggregate(
        documents=Count("id"),
        indexed=Count("id", filter=Q(status=S.INDEXED)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        in_progress=Count("id", filter=Q(status__in=[S.QUEUED, S.PARSING, S.EMBEDDING])),
        chunks=Sum("chunk_count"),
        chunks_done=Sum("chunks_done"),
    )
    return KnowledgeBaseSummary(
        documents=agg["documents"],
        indexed=agg["indexed"],
        failed=agg["failed"],
        in_progress=agg["in_progress"],
        chunks=agg["chunks"] or 0,
        chunks_done=agg["chunks_done"] or 0,
    )


def document_as_dict(document: Document) -> dict[str, object]:
    return {
        "id": document.pk,
        "source": document.source,
        "title": document.title,
        "status": document.status,
        "error": document.error,
        "chunks": document.chunk_count,
        "chunks_done": document.chunks_done,
        "version": document.version,
        "mime_type": document.mime_type,
        "bytes": document.byte_size,
        "timings_ms": {"parse": document.parse_ms, "embed": document.embed_ms, "index": document.index_ms},
        "updated_at": document.updated_at.isoformat(),
    }
