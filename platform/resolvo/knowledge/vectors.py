"""Process-wide accessors for the heavy ingestion objects, created lazily on first use.

Nothing here runs at import time. Everything that touches the vector store goes through
:func:`get_store`, and every read on the store needs an organization (see ``ingestion.store``).
"""

from __future__ import annotations

import threading
from typing import cast

from django.conf import settings

from ingestion.embed import CoalescingEmbedder, Embedder, MultilingualEmbedder, get_embedder, get_multilingual_embedder
from ingestion.sparse import SparseEncoder
from ingestion.split import SplitConfig, Splitter
from ingestion.store import CollectionConfig, SetupReport, VectorStore, collection_name, open_store, setup_store
from ingestion.store.base import Quantization

_lock = threading.Lock()
_store: VectorStore | None = None
_splitter: Splitter | None = None
_sparse: SparseEncoder | None = None
_answer_embedder: CoalescingEmbedder | None = None


def embedder() -> Embedder:
    return get_embedder(settings.EMBEDDING_MODEL, device=settings.EMBEDDING_DEVICE)


def multilingual_embedder() -> MultilingualEmbedder | None:
    """The multilingual model (``EMBEDDING_MULTILINGUAL``), or None when it is off or its
    package is not installed on this platform."""
    return get_multilingual_embedder(settings.EMBEDDING_MULTILINGUAL, threads=settings.EMBEDDING_MULTILINGUAL_THREADS)


def chunks_collection() -> tuple[str, int]:
    """The collection for the configured models, and its multilingual vector's size (0: none).
    One collection per combination: turning the multilingual model on or off starts another
    collection (re-index), so no collection mixes points with and without its vector."""
    model, multilingual = embedder(), multilingual_embedder()
    name = collection_name(model.slug, model.dimension)
    if multilingual is None:
        return name, 0
    return f"{name}__{multilingual.slug}", multilingual.dimension


def answer_embedder() -> CoalescingEmbedder:
    """The embedder for the answer path (questions, answer sentences): concurrent requests
    share model calls, questions first (see :class:`ingestion.embed.CoalescingEmbedder`).
    Ingestion embeds its own large batches with :func:`embedder` directly."""
    global _answer_embedder
    with _lock:
        model = embedder()
        if _answer_embedder is None or _answer_embedder.embedder is not model:
            _answer_embedder = CoalescingEmbedder(
                model,
                max_texts=settings.EMBEDDING_BATCH_MAX_TEXTS,
                wait_s=settings.EMBEDDING_BATCH_WAIT_MS / 1000,
            )
        return _answer_embedder


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


def collection_config() -> CollectionConfig:
    """The Qdrant server collection's layout from the QDRANT_* settings."""
    return CollectionConfig(
        on_disk=settings.QDRANT_ON_DISK,
        quantization=cast(Quantization, settings.QDRANT_QUANTIZATION),
        hnsw_m=settings.QDRANT_HNSW_M,
        hnsw_ef_construct=settings.QDRANT_HNSW_EF_CONSTRUCT,
        hnsw_payload_m=settings.QDRANT_HNSW_PAYLOAD_M,
    )


def store_setup() -> SetupReport:
    """Create the configured model's collection, or bring it to :func:`collection_config`
    (``manage.py vectors_setup``, a deployment step). Closes this process's store first: the
    embedded engine takes one opener at a time."""
    reset()
    model = embedder()
    collection, multilingual_dimension = chunks_collection()
    return setup_store(
        url=settings.QDRANT_URL or None,
        api_key=settings.QDRANT_API_KEY,
        path=str(settings.QDRANT_PATH),
        collection=collection,
        dimension=model.dimension,
        config=collection_config(),
        multilingual_dimension=multilingual_dimension,
    )


def get_store() -> VectorStore:
    """The vector store for the configured embedding model (one collection per model)."""
    global _store
    with _lock:
        if _store is None:
            model = embedder()
            collection, multilingual_dimension = chunks_collection()
            _store = open_store(
                url=settings.QDRANT_URL or None,
                api_key=settings.QDRANT_API_KEY,
                path=str(settings.QDRANT_PATH),
                collection=collection,
                dimension=model.dimension,
                config=collection_config(),
                multilingual_dimension=multilingual_dimension,
            )
        return _store


def reset() -> None:
    """Close and forget the store (tests switch stores between cases)."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
