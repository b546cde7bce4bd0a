"""One small vector-store interface with two engines behind it.

- :class:`~ingestion.store.edge.EdgeStore`: Qdrant's engine in-process (``qdrant-edge-py``), the
  embedded mode's store. Single process: the shard's write-ahead log is locked by its owner.
- :class:`~ingestion.store.server.ServerStore`: ``qdrant-client`` talking to a Qdrant server
  (production), or to qdrant-client's local mode, which is how tests exercise the same adapter.

Every read and delete takes the organization as a required keyword, so no call can forget the
tenant filter.
"""

from ingestion.store.base import (
    DENSE,
    SPARSE,
    SearchHit,
    StoredPoint,
    VectorStore,
    collection_name,
)

__all__ = ["DENSE", "SPARSE", "SearchHit", "StoredPoint", "VectorStore", "collection_name", "open_store"]


def open_store(
    *, url: str | None, path: str, collection: str, dimension: int, api_key: str | None = None
) -> VectorStore:
    """The server store when ``url`` is set, else the embedded engine at ``path``."""
    if url:
        from ingestion.store.server import ServerStore

        return ServerStore.connect(url=url, api_key=api_key, collection=collection, dimension=dimension)
    from ingestion.store.edge import EdgeStore

    return EdgeStore.open(path=path, collection=collection, dimension=dimension)
