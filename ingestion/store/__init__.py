"""One small vector-store interface with two engines behind it.

- :class:`~ingestion.store.edge.EdgeStore`: Qdrant's engine in-process (``qdrant-edge-py``), the
  embedded mode's store. Single process: the shard's write-ahead log is locked by its owner.
- :class:`~ingestion.store.server.ServerStore`: ``qdrant-client`` talking to a Qdrant server
  (production), or to qdrant-client's local mode, which is how tests exercise the same adapter.

Every read and delete takes the organization as a required keyword, so no call can forget the
tenant filter.
"""

import os

from ingestion.store.base import (
    DENSE,
    SPARSE,
    CollectionConfig,
    SearchHit,
    SetupReport,
    StoredPoint,
    VectorStore,
    collection_name,
)

__all__ = [
    "DENSE",
    "SPARSE",
    "CollectionConfig",
    "SearchHit",
    "SetupReport",
    "StoredPoint",
    "VectorStore",
    "collection_name",
    "open_store",
    "setup_store",
]


def open_store(
    *,
    url: str | None,
    path: str,
    collection: str,
    dimension: int,
    api_key: str | None = None,
    config: CollectionConfig | None = None,
    multilingual_dimension: int = 0,
) -> VectorStore:
    """The server store when ``url`` is set, else the embedded engine at ``path``. ``config``
    applies to a server collection that does not exist yet (the embedded engine ignores it).
    ``multilingual_dimension``: the collection also holds a multilingual vector of that size."""
    if url:
        from ingestion.store.server import ServerStore

        return ServerStore.connect(
            url=url,
            api_key=api_key,
            collection=collection,
            dimension=dimension,
            config=config,
            multilingual_dimension=multilingual_dimension,
        )
    from ingestion.store.edge import EdgeStore

    return EdgeStore.open(
        path=path, collection=collection, dimension=dimension, multilingual_dimension=multilingual_dimension
    )


def setup_store(
    *,
    url: str | None,
    path: str,
    collection: str,
    dimension: int,
    config: CollectionConfig,
    api_key: str | None = None,
    multilingual_dimension: int = 0,
) -> SetupReport:
    """Create the collection, or bring an existing one to ``config``, before anything serves from
    it (a deployment step, like a migration; idempotent). On a Qdrant server this sets the vector
    layout and the payload indexes; the embedded engine is created with its defaults."""
    if url:
        from ingestion.store.server import ServerStore

        server = ServerStore(
            ServerStore.client(url=url, api_key=api_key), collection, multilingual_dimension=multilingual_dimension
        )
        try:
            return server.setup(dimension=dimension, config=config)
        finally:
            server.close()
    from ingestion.store.edge import EdgeStore

    existed = os.path.isdir(os.path.join(path, collection))
    EdgeStore.open(
        path=path, collection=collection, dimension=dimension, multilingual_dimension=multilingual_dimension
    ).close()
    return SetupReport(collection, "embedded", created=not existed)
