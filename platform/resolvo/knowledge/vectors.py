"""Process-wide accessors for the heavy ingestion objects, created lazily on first use.

Nothing here runs at import time. Everything that touches the vector store goes through
:func:`get_store`, and every read on the store needs an organization (see ``ingestion.store``).
"""

from __future__ import annotations

import threading

from django.conf import settings

from ingestion.embed import Embedder, get_embedder
from ingestion.sparse import SparseEncoder
from ingestion.split import SplitConfig, Splitter
from ingestion.store import VectorStore, collection_name, open_store

_lock = threading.Lock()
_store: VectorStore | None = None
_splitter: Splitter | None = None
_sparse: SparseEncoder | None = None


def embedder() -> Embedder:
    return get_embedder(settings.EMBEDDING_MODEL, device=settings.EMBEDDING_DEVICE)


def sparse_encoder() -> SparseEncoder:
    global _sparse
    with _lock:
        if _sparse is None:
            _sparse = SparseEncoder()
        return _sparse


def splitter() -> Splitter:
    global _splitter
    with _lock:
        if _splitter is None:
            model = embedder()
            _splitter = Splitter(
                model.tokenizer,
                SplitConfig(
                    max_tokens=model.max_tokens,
                    target_tokens=min(settings.CHUNK_TARGET_TOKENS, model.max_tokens),
                    overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
                ),
            )
        return _splitter


def get_store() -> VectorStore:
    """The vector store for the configured embedding model (one collection per model)."""
    global _store
    with _lock:
        if _store is None:
            model = embedder()
            _store = open_store(
                url=settings.QDRANT_URL or None,
                api_key=settings.QDRANT_API_KEY,
                path=str(settings.QDRANT_PATH),
                collection=collection_name(model.slug, model.dimension),
                dimension=model.dimension,
            )
        return _store


def reset() -> None:
    """Close and forget the store (tests switch stores between cases)."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
