"""Reads for knowledge bases and documents."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from ingestion.store import SearchHit
from resolvo.knowledge.links import SectionRef, section_link
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import Organization
from resolvo.organizations.selectors import organization_get


class KnowledgeBaseNotFound(LookupError):
    """No such knowledge base in this organization; the message can be shown to the caller."""


def knowledge_base_get(*, organization: Organization, name: str) -> KnowledgeBase:
    """The knowledge base ``name`` of ``organization`` (the organization comes from the tenant
    gate, :mod:`resolvo.organizations.selectors`, so it is already the caller's)."""
    found = KnowledgeBase.objects.select_related("organization").filter(organization=organization, name=name).first()
    if found is None:
        raise KnowledgeBaseNotFound(f"No knowledge base {name!r} in {organization.slug!r}.")
    return found


def knowledge_base_for_operator(*, org_slug: str, name: str) -> KnowledgeBase:
    """Organization and knowledge base by name, for trusted operator tools (the commands)."""
    return knowledge_base_get(organization=organization_get(slug=org_slug), name=name)


def documents_for_kb(*, knowledge_base: KnowledgeBase) -> QuerySet[Document]:
    return knowledge_base.documents.order_by("source")


def documents_with_chunks(
    *, organization: Organization | None = None, knowledge_base: KnowledgeBase | None = None
) -> QuerySet[Document]:
    """The documents whose chunks belong in the vector store, in every organization, one
    organization or one knowledge base: all but sitemaps (their pages are documents of their own),
    failed documents (nothing of theirs was indexed) and documents being deleted."""
    S = Document.Status
    documents = Document.objects.exclude(kind=Document.Kind.SITEMAP).exclude(status__in=[S.FAILED, S.DELETING])
    if organization is not None:
        documents = documents.filter(knowledge_base__organization=organization)
    if knowledge_base is not None:
        documents = documents.filter(knowledge_base=knowledge_base)
    return documents.order_by("pk")


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
        "kind": document.kind,
        "parent": document.parent_id,
        "title": document.title,
        "tags": list(document.tags or []),
        "source_tags": list(document.source_tags or []),
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


# --- Retrieval: the only way into the vector store for reads ---------------------------------


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: str
    document_id: int
    source: str
    title: str
    section: tuple[str, ...]
    url: str
    position: int
    text: str
    rank: int
    score: float
    """Fused score (RRF: rank-based; comparable only within one result list)."""
    similarity: float
    """Cosine similarity between the query and the chunk's dense vector (absolute, -1..1)."""
    vector: tuple[float, ...] = ()
    multilingual_similarity: float | None = None
    """Cosine similarity by the multilingual vector, for a chunk that a question in another
    language found through it (``None`` otherwise: English questions don't use that vector)."""

    @property
    def section_label(self) -> str:
        """The heading path for display, without repeating the document title."""
        path = list(self.section)
        if path and path[0].casefold() == self.title.casefold():
            path = path[1:]
        return " > ".join(path)

    @property
    def doc_key(self) -> str:
        """The source without its extension (how evaluation sets name documents)."""
        return self.source.rsplit(".", 1)[0] if "." in self.source.rsplit("/", 1)[-1] else self.source


def chunks_search(
    *,
    knowledge_base: KnowledgeBase,
    query: str,
    limit: int = 8,
    prefetch: int | None = None,
    fusion: str | None = None,
    mode: str = "hybrid",
    tags: Sequence[str] | None = None,
    language: str | None = None,
) -> list[RetrievedChunk]:
    """Hybrid retrieval over one knowledge base of one organization.

    The tenant filter comes from ``knowledge_base`` itself, so no caller can forget it.
    ``tags`` scopes the search to chunks of documents with any of them, as a filter inside the
    vector store (the ``limit`` best in-scope chunks, never a filtered-down list); ``None`` or
    empty searches the whole knowledge base.
    ``mode`` is ``hybrid`` (dense + BM25) or ``dense``. ``fusion`` is ``weighted`` (weighted
    reciprocal rank fusion of Qdrant's two candidate lists; the default, see
    ``RETRIEVAL_*`` settings) or ``qdrant-rrf`` (Qdrant's Query API prefetch + RRF).
    ``language`` is the question's language (ISO 639-1) when known: with ``weighted`` fusion a
    language other than English adds the multilingual vector's candidates (when the collection
    has that vector), then a BM25 list searched with the headings of the best of those (they are
    in the documents' language), and fuses the four lists with the ``RETRIEVAL_CROSSLINGUAL_*``
    weights; English or ``None`` keeps the two-list fusion (the multilingual model is not run).
    """
    import numpy as np
    from django.conf import settings

    from ingestion.fusion import weighted_rrf
    from resolvo.knowledge import vectors

    query = query.strip()
    if not query:
        return []
    fusion = fusion or settings.RETRIEVAL_FUSION
    depth = max(prefetch or settings.RETRIEVAL_PREFETCH, limit)
    dense = vectors.answer_embedder().embed_query(query)
    store = vectors.get_store()
    org, kb = str(knowledge_base.organization_id), str(knowledge_base.pk)
    scope = list(tags) if tags else None
    hits: list[SearchHit]
    multilingual_scores: dict[str, float] = {}
    if mode == "dense":
        hits = store.search(
            org=org, kb=kb, dense=dense, sparse=None, limit=limit, prefetch=depth, with_vectors=True, tags=scope
        )
    elif fusion == "qdrant-rrf":
        sparse = vectors.sparse_encoder().embed_query(query)
        hits = store.search(
            org=org,
            kb=kb,
            dense=dense,
            sparse=sparse,
            limit=limit,
            prefetch=depth,
            rrf_k=settings.RETRIEVAL_RRF_K,
            with_vectors=True,
            tags=scope,
        )
    else:
        sparse = vectors.sparse_encoder().embed_query(query)
        dense_hits, sparse_hits = store.candidates(
            org=org, kb=kb, dense=dense, sparse=sparse, limit=depth, with_vectors=True, tags=scope
        )
        lists = [dense_hits, sparse_hits]
        weights = [settings.RETRIEVAL_DENSE_WEIGHT, settings.RETRIEVAL_SPARSE_WEIGHT]
        multilingual = vectors.multilingual_embedder() if _crosslingual(language) else None
        if multilingual is not None:
            multilingual_hits = store.multilingual_candidates(
                org=org, kb=kb, vector=multilingual.embed_query(query), limit=depth, with_vectors=True, tags=scope
            )
            if multilingual_hits:
                multilingual_scores = {h.id: h.score for h in multilingual_hits}
                lists.append(multilingual_hits)
                weights = [
                    settings.RETRIEVAL_CROSSLINGUAL_DENSE_WEIGHT,
                    settings.RETRIEVAL_CROSSLINGUAL_SPARSE_WEIGHT,
                    settings.RETRIEVAL_MULTILINGUAL_WEIGHT,
                ]
                # Pseudo-relevance feedback: the headings of the best multilingual matches are
                # in the documents' language, so BM25 can search with them.
                headings = " ".join(
                    str(h.payload.get("context") or h.payload.get("title") or "")
                    for h in multilingual_hits[: settings.RETRIEVAL_CROSSLINGUAL_FEEDBACK_DOCS]
                )
                feedback = vectors.sparse_encoder().embed_query(headings)
                if settings.RETRIEVAL_CROSSLINGUAL_FEEDBACK_WEIGHT and feedback.indices:
                    feedback_hits = store.lexical_candidates(
                        org=org, kb=kb, sparse=feedback, limit=depth, with_vectors=True, tags=scope
                    )
                    lists.append(feedback_hits)
                    weights.append(settings.RETRIEVAL_CROSSLINGUAL_FEEDBACK_WEIGHT)
        by_id = {h.id: h for ranked in reversed(lists) for h in ranked}
        fused = weighted_rrf([[h.id for h in ranked] for ranked in lists], weights, k=settings.RETRIEVAL_RRF_K)
        hits = [dataclasses.replace(by_id[i], score=score) for i, score in fused[:limit]]
    out = []
    for rank, hit in enumerate(hits, start=1):
        p = hit.payload
        document_id, position = int(p["document"]), int(p.get("position", 0))
        link = str(p.get("url", "")) or section_link(SectionRef(knowledge_base.organization_id, document_id, position))
        vec = np.asarray(hit.dense, dtype=np.float32) if hit.dense is not None else None
        similarity = float(vec @ dense) if vec is not None else 0.0
        out.append(
            RetrievedChunk(
                chunk_id=hit.id,
                document_id=document_id,
                source=str(p.get("source", "")),
                title=str(p.get("title", "")),
                section=tuple(p.get("section") or ()),
                url=link,
                position=position,
                text=str(p.get("text", "")),
                rank=rank,
                score=hit.score,
                similarity=similarity,
                vector=tuple(float(x) for x in vec) if vec is not None else (),
                multilingual_similarity=multilingual_scores.get(hit.id),
            )
        )
    return out


def _crosslingual(language: str | None) -> bool:
    """Whether a question in ``language`` is matched through the multilingual vector too."""
    return bool(language) and not str(language).lower().startswith("en")


def chunks_neighbours(
    *, knowledge_base: KnowledgeBase, chunks: list[RetrievedChunk], window: int = 1
) -> dict[str, list[tuple[int, str]]]:
    """For each chunk (by ``chunk_id``), the (position, text) of the chunks up to ``window``
    before and after it in its document, in order. One store request for all of them."""
    from resolvo.knowledge import vectors

    wanted: dict[str, set[int]] = {}
    for chunk in chunks:
        around = range(chunk.position - window, chunk.position + window + 1)
        wanted.setdefault(str(chunk.document_id), set()).update(p for p in around if p >= 0 and p != chunk.position)
    hits = vectors.get_store().points_at(
        org=str(knowledge_base.organization_id), positions={d: sorted(p) for d, p in wanted.items()}
    )
    text_at = {
        (str(h.payload["document"]), int(h.payload["position"])): str(h.payload.get("text", ""))
        for h in hits
        if str(h.payload.get("kb")) == str(knowledge_base.pk)
    }
    out: dict[str, list[tuple[int, str]]] = {}
    for chunk in chunks:
        document = str(chunk.document_id)
        out[chunk.chunk_id] = [
            (p, text_at[(document, p)])
            for p in range(chunk.position - window, chunk.position + window + 1)
            if p != chunk.position and (document, p) in text_at
        ]
    return out


@dataclass(frozen=True)
class SectionPage:
    document: Document
    section: tuple[str, ...]
    before: str
    cited: str
    """The cited chunk's own text, shown highlighted between ``before`` and ``after``."""
    after: str


def section_read(*, ref: SectionRef, window: int = 4) -> SectionPage | None:
    """The cited section of a document of ``ref``'s organization: the chunk at
    ``ref.position`` and its neighbours (up to ``window`` each side) under the same heading,
    joined back into text. None when the document is gone or the position is not there."""
    from ingestion.split import join_overlapping, overlap_length
    from resolvo.knowledge import vectors

    document = (
        Document.objects.select_related("knowledge_base")
        .filter(pk=ref.document_id, knowledge_base__organization_id=ref.organization_id)
        .exclude(status=Document.Status.DELETING)
        .first()
    )
    if document is None:
        return None
    positions = [p for p in range(ref.position - window, ref.position + window + 1) if p >= 0]
    hits = vectors.get_store().points_at(org=str(ref.organization_id), positions={str(document.pk): positions})
    kb = str(document.knowledge_base_id)
    at = {int(h.payload["position"]): h.payload for h in hits if str(h.payload.get("kb")) == kb}
    cited = at.get(ref.position)
    if cited is None:
        return None
    section = tuple(cited.get("section") or ())
    run = [ref.position]
    for step in (-1, 1):  # widen while the neighbours sit under the same heading
        p = ref.position + step
        while p in at and tuple(at[p].get("section") or ()) == section:
            run.append(p)
            p += step
    text = {p: str(at[p].get("text", "")) for p in run}
    cited_text = text[ref.position]
    before = join_overlapping([text[p] for p in sorted(run) if p < ref.position])
    after = join_overlapping([text[p] for p in sorted(run) if p > ref.position])
    before = before[: len(before) - overlap_length(before, cited_text)] if before else ""
    after = after[overlap_length(cited_text, after) :] if after else ""
    return SectionPage(document=document, section=section, before=before, cited=cited_text, after=after)


# --- one organization's knowledge bases and documents, by id (the REST API) -----------------------


class DocumentNotFound(LookupError):
    """No such document in this organization (the same answer for another organization's ids)."""


def knowledge_bases_in_organization(*, organization: Organization) -> QuerySet[KnowledgeBase]:
    return KnowledgeBase.objects.filter(organization=organization)


def knowledge_base_in_organization(*, organization: Organization, knowledge_base_id: int) -> KnowledgeBase:
    found = (
        KnowledgeBase.objects.select_related("organization")
        .filter(pk=knowledge_base_id, organization=organization)
        .first()
    )
    if found is None:
        raise KnowledgeBaseNotFound(f"No knowledge base {knowledge_base_id}.")
    return found


def document_in_organization(*, organization: Organization, document_id: int) -> Document:
    found = (
        Document.objects.select_related("knowledge_base__organization")
        .filter(pk=document_id, knowledge_base__organization=organization)
        .first()
    )
    if found is None:
        raise DocumentNotFound(f"No document {document_id}.")
    return found
