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

from ingestion.embed import Embedder
from ingestion.sparse import SparseEncoder
from ingestion.store.base import DOCUMENT, KB, ORG, POSITION, StoredPoint, VectorStore
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


@dataclass(frozen=True)
class IndexResult:
    embedded: int
    kept: int
    deleted: int
    embed_seconds: float
    store_seconds: float


ProgressCallback = Callable[[int, int], None]
"""Called with (chunks done, chunks total) after each stored batch."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def point_id(document: str, position: int, chunk_hash: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{document}:{position}:{chunk_hash}"))


def index_document(
    *,
    store: VectorStore,
    embedder: Embedder,
    sparse: SparseEncoder,
    ref: DocumentRef,
    chunks: Sequence[Chunk],
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
) -> IndexResult:
    """Make the store hold exactly ``chunks`` for ``ref.document``.

    Precondition: nobody else indexes the same document concurrently (the caller holds the
    document's claim).
    """
    wanted = [(point_id(ref.document, c.position, content_hash(c.embed_text)), c) for c in chunks]
    existing = store.point_ids(org=ref.org, document=ref.document)
    missing = [(pid, c) for pid, c in wanted if pid not in existing]
    done = len(wanted) - len(missing)
    embed_s = store_s = 0.0
    if on_progress:
        on_progress(done, len(wanted))
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        t0 = time.perf_counter()
        texts = [c.embed_text for _, c in batch]
        dense = embedder.embed_documents(texts)
        lexical = [sparse.embed_document(t) for t in texts]
        t1 = time.perf_counter()
        store.upsert(
            [
                StoredPoint(pid, dense[i], lexical[i], _payload(ref, c))
                for i, (pid, c) in enumerate(batch)
            ]
        )
        t2 = time.perf_counter()
        embed_s += t1 - t0
        store_s += t2 - t1
        done += len(batch)
        if on_progress:
            on_progress(done, len(wanted))
    stale = sorted(existing - {pid for pid, _ in wanted})
    store.delete_ids(org=ref.org, ids=stale)
    return IndexResult(len(missing), len(wanted) - len(missing), len(stale), embed_s, store_s)


def _payload(ref: DocumentRef, chunk: Chunk) -> dict[str, object]:
    return {
        ORG: ref.org,
        KB: ref.kb,
        DOCUMENT: ref.document,
        POSITION: chunk.position,
        "source": ref.source,
        "title": ref.title,
        "url": ref.url,
        "section": list(chunk.section_path),
        "context": chunk.context,
        "text": chunk.text,
        "tokens": chunk.token_count,
    }
