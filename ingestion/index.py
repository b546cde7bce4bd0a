"""Index stage: turn chunks into points and make the store hold exactly the document's chunks.

Point ids are deterministic (document, position, content hash), so indexing is idempotent:
chunks already stored are neither re-embedded nor rewritten, chunks the new version no longer
has are deleted, and a run interrupted half-way is completed by the next run without duplicates.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingestion.embed import Embedder, MultilingualEmbedder
from ingestion.sparse import SparseEncoder
from ingestion.store.base import DOCUMENT, KB, ORG, POSITION, TAGS, StoredPoint, VectorStore
from ingestion.types import Chunk

_NAMESPACE = uuid.UUID("7d1b8f3e-8f43-4b0e-9a52-5d6a0c1f2e11")


@dataclass(frozen=True)
class DocumentRef:
    """Who a document belongs to and how to cite it. ``org`` is the tenant key."""

    org: str
    kb: str
    document: str
    source: str
    title: str
    url: str = ""
    tags: tuple[str, ...] = ()
    """Every chunk's ``tags`` payload (see :mod:`ingestion.tags`); scoped searches filter on it."""


@dataclass(frozen=True)
class IndexResult:
    embedded: int
    kept: int
    deleted: int
    embed_seconds: float
    store_seconds: float


ProgressCallback = Callable[[DocumentRef, int, int], None]
"""Called with (document, chunks done, chunks total) after each stored batch that touched it."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def point_id(document: str, position: int, chunk_hash: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{document}:{position}:{chunk_hash}"))


@dataclass
class _Plan:
    ref: DocumentRef
    wanted: list[tuple[str, Chunk]]
    existing: set[str]
    done: int = 0
    embedded: int = 0
    embed_s: float = 0.0
    store_s: float = 0.0


def index_documents(
    *,
    store: VectorStore,
    embedder: Embedder,
    sparse: SparseEncoder,
    documents: Sequence[tuple[DocumentRef, Sequence[Chunk]]],
    multilingual: MultilingualEmbedder | None = None,
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
) -> list[IndexResult]:
    """Make the store hold exactly the given chunks for each document; results in input order.

    Chunks still missing from all documents are embedded together, longest-first in full
    batches, because the model is several times faster per text in a batch of 64 than one
    document at a time. ``multilingual`` (when given) adds each chunk's multilingual vector.
    Precondition: nobody else indexes these documents concurrently (the caller holds their
    claims).
    """
    plans: list[_Plan] = []
    for ref, chunks in documents:
        wanted = [(point_id(ref.document, c.position, content_hash(c.embed_text)), c) for c in chunks]
        plans.append(_Plan(ref, wanted, store.point_ids(org=ref.org, document=ref.document)))
    queue: list[tuple[_Plan, str, Chunk]] = []
    for plan in plans:
        missing = [(pid, c) for pid, c in plan.wanted if pid not in plan.existing]
        plan.done = len(plan.wanted) - len(missing)
        queue.extend((plan, pid, c) for pid, c in missing)
        if on_progress:
            on_progress(plan.ref, plan.done, len(plan.wanted))
    queue.sort(key=lambda item: len(item[2].embed_text), reverse=True)
    for start in range(0, len(queue), batch_size):
        batch = queue[start : start + batch_size]
        t0 = time.perf_counter()
        texts = [c.embed_text for _, _, c in batch]
        dense = embedder.embed_documents(texts)
        lexical = [sparse.embed_document(t) for t in texts]
        crosslingual = (
            multilingual.embed_passages(texts, [c.context for _, _, c in batch]) if multilingual is not None else None
        )
        t1 = time.perf_counter()
        store.upsert(
            [
                StoredPoint(
                    pid,
                    dense[i],
                    lexical[i],
                    _payload(plan.ref, c),
                    multilingual=crosslingual[i] if crosslingual is not None else None,
                )
                for i, (plan, pid, c) in enumerate(batch)
            ]
        )
        t2 = time.perf_counter()
        touched: dict[int, _Plan] = {}
        for plan, _, _ in batch:
            share = 1 / len(batch)
            plan.embed_s += (t1 - t0) * share
            plan.store_s += (t2 - t1) * share
            plan.done += 1
            plan.embedded += 1
            touched[id(plan)] = plan
        if on_progress:
            for plan in touched.values():
                on_progress(plan.ref, plan.done, len(plan.wanted))
    results = []
    for plan in plans:
        stale = sorted(plan.existing - {pid for pid, _ in plan.wanted})
        store.delete_ids(org=plan.ref.org, ids=stale)
        kept = len(plan.wanted) - plan.embedded
        if kept:
            # Points kept from the last version carry the tags it had; the document's may differ.
            document_tags_set(store=store, ref=plan.ref)
        results.append(IndexResult(plan.embedded, kept, len(stale), plan.embed_s, plan.store_s))
    return results


def document_tags_set(*, store: VectorStore, ref: DocumentRef) -> None:
    """Give every stored point of the document ``ref.tags``, in place (nothing is re-embedded)."""
    store.set_payload(org=ref.org, document=ref.document, payload={TAGS: list(ref.tags)})


def _payload(ref: DocumentRef, chunk: Chunk) -> dict[str, object]:
    return {
        ORG: ref.org,
        KB: ref.kb,
        DOCUMENT: ref.document,
        POSITION: chunk.position,
        TAGS: list(ref.tags),
        "source": ref.source,
        "title": ref.title,
        "url": ref.url,
        "section": list(chunk.section_path),
        "context": chunk.context,
        "text": chunk.text,
        "tokens": chunk.token_count,
    }
