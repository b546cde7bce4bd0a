"""The Qdrant server adapter (production), through qdrant-client.

The same class runs against qdrant-client's local mode (``path=`` or ``:memory:``), which
implements the same API in-process; that is how the test-suite exercises this adapter without a
server binary. Local mode keeps the collection settings it is given (so a test can read them back)
but acts on none of them: it builds no HNSW graph, quantizes nothing, keeps everything in memory,
ignores payload indexes (``payload_schema`` reads back empty) and ignores dense-vector updates.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ingestion.sparse import SparseVector
from ingestion.store.base import (
    DENSE,
    DOCUMENT,
    KB,
    MULTILINGUAL,
    ORG,
    POSITION,
    SPARSE,
    TAGS,
    CollectionConfig,
    DenseVector,
    Fusion,
    SearchHit,
    SetupReport,
    StoredPoint,
    tenant_scope,
)
from ingestion.types import TransientError

_SCROLL_PAGE = 1000

# The payload indexes every collection has. ``org`` is the tenant field (``is_tenant``: Qdrant
# stores each organization's points together and plans filtered searches per tenant).
_PAYLOAD_INDEXES: tuple[tuple[str, Any], ...] = (
    (ORG, models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)),
    (KB, models.PayloadSchemaType.KEYWORD),
    (DOCUMENT, models.PayloadSchemaType.KEYWORD),
    (POSITION, models.PayloadSchemaType.INTEGER),
    (TAGS, models.PayloadSchemaType.KEYWORD),
)


def _hnsw(config: CollectionConfig) -> models.HnswConfigDiff:
    return models.HnswConfigDiff(
        m=config.hnsw_m, ef_construct=config.hnsw_ef_construct, payload_m=config.hnsw_payload_m
    )


def _quantization(config: CollectionConfig) -> models.ScalarQuantization | None:
    if config.quantization == "none":
        return None
    # int8 with the 1 % outliers clipped; the quantized copy stays in RAM even when the originals
    # are on disk (``always_ram``: the flag every server version understands; Qdrant 1.19+ reads
    # it as ``memory: pinned``).
    return models.ScalarQuantization(
        scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
    )


def _dense_params(dimension: int, config: CollectionConfig) -> models.VectorParams:
    # ``on_disk`` rather than the newer ``memory: cold`` (Qdrant 1.19+), which it means there, so
    # that older servers accept the collection too.
    return models.VectorParams(
        size=dimension,
        distance=models.Distance.COSINE,
        on_disk=config.on_disk,
        hnsw_config=_hnsw(config),
        quantization_config=_quantization(config),
    )


def _dense_differences(info: models.CollectionInfo, dimension: int, config: CollectionConfig) -> list[str]:
    """The settings of ``config`` that the existing collection's dense vectors do not have.

    Per-vector values win over the collection-wide ones, as in Qdrant itself."""
    vectors = info.config.params.vectors
    current = vectors.get(DENSE) if isinstance(vectors, dict) else None
    if current is None:
        raise ValueError(f"the collection has no {DENSE!r} vector: it was not made by this adapter")
    if current.size != dimension:
        raise ValueError(f"the collection holds {current.size}-d vectors, the embedding model makes {dimension}-d ones")
    changed = []
    on_disk = current.memory == models.Memory.COLD if current.memory is not None else bool(current.on_disk)
    if on_disk != config.on_disk:
        changed.append("on_disk")
    quantization = current.quantization_config or info.config.quantization_config
    if ("scalar" if isinstance(quantization, models.ScalarQuantization) else "none") != config.quantization:
        changed.append("quantization")
    wide, own = info.config.hnsw_config, current.hnsw_config
    m = own.m if own and own.m is not None else wide.m
    ef = own.ef_construct if own and own.ef_construct is not None else wide.ef_construct
    payload_m = own.payload_m if own and own.payload_m is not None else wide.payload_m
    if (m, ef) != (config.hnsw_m, config.hnsw_ef_construct) or (
        config.hnsw_payload_m is not None and payload_m != config.hnsw_payload_m
    ):
        changed.append("hnsw")
    return changed


@contextmanager
def _unavailable_is_transient(operation: str) -> Iterator[None]:
    """Qdrant being down, slow or overloaded is a :class:`TransientError` (the task retries),
    for every operation: a delete or a neighbour fetch as much as a search."""
    try:
        yield
    except (ResponseHandlingException, UnexpectedResponse) as exc:
        raise TransientError(f"Qdrant {operation} failed: {exc}") from exc


def _hit(p: models.ScoredPoint) -> SearchHit:
    vector = p.vector[DENSE] if isinstance(p.vector, dict) and DENSE in p.vector else None
    dense = [float(x) for x in vector if isinstance(x, float | int)] if isinstance(vector, list) else None
    return SearchHit(str(p.id), float(p.score), dict(p.payload or {}), dense)


class SnapshotsUnsupported(RuntimeError):
    """qdrant-client's local mode has no snapshots (its methods raise NotImplementedError)."""


class ServerStore:
    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        *,
        url: str = "",
        api_key: str | None = None,
        dimension: int = 0,
        multilingual_dimension: int = 0,
    ) -> None:
        self._client = client
        self.collection = collection
        self.url = url
        """The server's http(s) URL; empty for qdrant-client's local mode."""
        self._api_key = api_key
        self._dimension = dimension
        self.multilingual_dimension = multilingual_dimension
        """Size of the :data:`MULTILINGUAL` vector a missing collection is created with (0: none)."""
        self._config = CollectionConfig()
        """What a missing collection is created with (by :meth:`connect` or :meth:`wipe`)."""

    @staticmethod
    def client(*, url: str, api_key: str | None = None) -> QdrantClient:
        """``url`` is an http(s) URL of a Qdrant server, or ``local:PATH`` / ``:memory:`` for
        qdrant-client's in-process local mode."""
        if url == ":memory:":
            return QdrantClient(location=":memory:")
        if url.startswith("local:"):
            return QdrantClient(path=url.removeprefix("local:"))
        return QdrantClient(url=url, api_key=api_key, timeout=30)

    @classmethod
    def connect(
        cls,
        *,
        url: str,
        collection: str,
        dimension: int,
        api_key: str | None = None,
        config: CollectionConfig | None = None,
        multilingual_dimension: int = 0,
    ) -> ServerStore:
        """The store on ``collection``, created with ``config`` if it does not exist yet (a
        safety net: deployments create it beforehand with :meth:`setup`, which also brings an
        existing collection to a changed ``config``; connecting never changes one)."""
        server_url = url.rstrip("/") if url.startswith(("http://", "https://")) else ""
        store = cls(
            cls.client(url=url, api_key=api_key),
            collection,
            url=server_url,
            api_key=api_key,
            dimension=dimension,
            multilingual_dimension=multilingual_dimension,
        )
        store._config = config or CollectionConfig()
        store._ensure_collection(dimension)
        return store

    def setup(self, *, dimension: int, config: CollectionConfig) -> SetupReport:
        """Create the collection with ``config``, or bring an existing one to it; then make sure
        every payload index exists. Idempotent: a second run changes nothing and reports so.

        Changing ``on_disk``, ``quantization`` or ``hnsw`` on a collection with points makes the
        server rebuild its segments in the background (searches keep working meanwhile). A
        collection of another dimension is an error: its name carries the dimension, so that
        means it was made by something else.
        """
        self._config = config
        with _unavailable_is_transient("collection setup"):
            if not self._client.collection_exists(self.collection):
                self._create(dimension, config)
                self._ensure_payload_indexes()
                return SetupReport(self.collection, "server", created=True, config=config)
            changed = _dense_differences(self._client.get_collection(self.collection), dimension, config)
            if changed:
                self._client.update_collection(
                    self.collection,
                    vectors_config={
                        DENSE: models.VectorParamsDiff(
                            on_disk=config.on_disk,
                            hnsw_config=_hnsw(config),
                            quantization_config=_quantization(config) or models.Disabled.DISABLED,
                        )
                    },
                )
            self._ensure_payload_indexes()
        return SetupReport(self.collection, "server", created=False, changed=tuple(changed), config=config)

    def _ensure_collection(self, dimension: int) -> None:
        """Create the collection with this store's config if it is missing; add missing indexes."""
        with _unavailable_is_transient("collection setup"):
            if not self._client.collection_exists(self.collection):
                self._create(dimension, self._config)
            self._ensure_payload_indexes()

    def _create(self, dimension: int, config: CollectionConfig) -> None:
        dense = {DENSE: _dense_params(dimension, config)}
        if self.multilingual_dimension:
            dense[MULTILINGUAL] = _dense_params(self.multilingual_dimension, config)
        self._client.create_collection(
            self.collection,
            vectors_config=dense,
            # The BM25 index is an inverted index (no HNSW): it follows the dense vectors to disk.
            sparse_vectors_config={
                SPARSE: models.SparseVectorParams(
                    modifier=models.Modifier.IDF, index=models.SparseIndexParams(on_disk=config.on_disk)
                )
            },
        )

    def _ensure_payload_indexes(self) -> None:
        existing = self._client.get_collection(self.collection).payload_schema or {}
        for field, schema in _PAYLOAD_INDEXES:
            if field not in existing:
                self._client.create_payload_index(self.collection, field, field_schema=schema, wait=True)

    @staticmethod
    def _filter(
        org: str,
        kb: str | None = None,
        document: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        must: Sequence[Any] = (),
        should: Sequence[Any] = (),
    ) -> models.Filter:
        """The tenant scope (:func:`~ingestion.store.base.tenant_scope`), the tag scope (any of
        ``tags``, when given) and extra conditions."""
        scope: list[Any] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in tenant_scope(org, kb, document)
        ]
        if tags:
            scope.append(models.FieldCondition(key=TAGS, match=models.MatchAny(any=list(tags))))
        return models.Filter(must=[*scope, *must], should=list(should) or None)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        batch = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE: [float(x) for x in p.dense],
                    SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    **({MULTILINGUAL: [float(x) for x in p.multilingual]} if p.multilingual is not None else {}),
                },
                payload=p.payload,
            )
            for p in points
        ]
        with _unavailable_is_transient("upsert"):
            self._client.upsert(self.collection, points=batch, wait=True)

    def point_ids(self, *, org: str, document: str) -> set[str]:
        ids: set[str] = set()
        offset: Any = None
        while True:
            with _unavailable_is_transient("scroll"):
                records, offset = self._client.scroll(
                    self.collection,
                    scroll_filter=self._filter(org, document=document),
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
            ids.update(str(r.id) for r in records)
            if offset is None:
                return ids

    def delete_ids(self, *, org: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        flt = self._filter(org, must=[models.HasIdCondition(has_id=[str(uuid.UUID(i)) for i in ids])])
        with _unavailable_is_transient("delete"):
            self._client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def delete_where(self, *, org: str, kb: str | None = None, document: str | None = None) -> None:
        with _unavailable_is_transient("delete"):
            self._client.delete(
                self.collection,
                points_selector=models.FilterSelector(filter=self._filter(org, kb, document)),
                wait=True,
            )

    def count(self, *, org: str, kb: str | None = None, document: str | None = None) -> int:
        with _unavailable_is_transient("count"):
            response = self._client.count(self.collection, count_filter=self._filter(org, kb, document), exact=True)
        return int(response.count)

    def set_payload(self, *, org: str, document: str, payload: Mapping[str, Any]) -> None:
        with _unavailable_is_transient("set payload"):
            self._client.set_payload(
                self.collection,
                payload=dict(payload),
                points=models.FilterSelector(filter=self._filter(org, document=document)),
                wait=True,
            )

    def search(
        self,
        *,
        org: str,
        kb: str,
        dense: DenseVector,
        sparse: SparseVector | None,
        limit: int,
        prefetch: int,
        fusion: Fusion = "rrf",
        rrf_k: int = 60,
        with_vectors: bool = False,
        tags: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        flt = self._filter(org, kb, tags=tags)
        vectors: Any = [DENSE] if with_vectors else False
        dense_query = [float(x) for x in dense]
        with _unavailable_is_transient("search"):
            if sparse is None or not sparse.indices:
                response = self._client.query_points(
                    self.collection,
                    query=dense_query,
                    using=DENSE,
                    query_filter=flt,
                    limit=limit,
                    with_payload=True,
                    with_vectors=vectors,
                )
            else:
                response = self._client.query_points(
                    self.collection,
                    prefetch=[
                        models.Prefetch(query=dense_query, using=DENSE, filter=flt, limit=prefetch),
                        models.Prefetch(
                            query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                            using=SPARSE,
                            filter=flt,
                            limit=prefetch,
                        ),
                    ],
                    query=models.RrfQuery(rrf=models.Rrf(k=rrf_k))
                    if fusion == "rrf"
                    else models.FusionQuery(fusion=models.Fusion.DBSF),
                    query_filter=flt,
                    limit=limit,
                    with_payload=True,
                    with_vectors=vectors,
                )
        return [_hit(p) for p in response.points]

    def candidates(
        self,
        *,
        org: str,
        kb: str,
        dense: DenseVector,
        sparse: SparseVector,
        limit: int,
        with_vectors: bool = False,
        tags: Sequence[str] | None = None,
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        flt = self._filter(org, kb, tags=tags)
        vectors: Any = [DENSE] if with_vectors else False
        requests = [
            models.QueryRequest(
                query=[float(x) for x in dense],
                using=DENSE,
                filter=flt,
                limit=limit,
                with_payload=True,
                with_vector=vectors,
            ),
        ]
        if sparse.indices:
            requests.append(
                models.QueryRequest(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    filter=flt,
                    limit=limit,
                    with_payload=True,
                    with_vector=vectors,
                )
            )
        with _unavailable_is_transient("search"):
            responses = self._client.query_batch_points(self.collection, requests=requests)
        lists = [[_hit(p) for p in r.points] for r in responses]
        return lists[0], (lists[1] if len(lists) > 1 else [])

    def multilingual_candidates(
        self,
        *,
        org: str,
        kb: str,
        vector: DenseVector,
        limit: int,
        with_vectors: bool = False,
        tags: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        if not self.multilingual_dimension:
            return []
        with _unavailable_is_transient("search"):
            response = self._client.query_points(
                self.collection,
                query=[float(x) for x in vector],
                using=MULTILINGUAL,
                query_filter=self._filter(org, kb, tags=tags),
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE] if with_vectors else False,
            )
        return [_hit(p) for p in response.points]

    def lexical_candidates(
        self,
        *,
        org: str,
        kb: str,
        sparse: SparseVector,
        limit: int,
        with_vectors: bool = False,
        tags: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        if not sparse.indices:
            return []
        with _unavailable_is_transient("search"):
            response = self._client.query_points(
                self.collection,
                query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                using=SPARSE,
                query_filter=self._filter(org, kb, tags=tags),
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE] if with_vectors else False,
            )
        return [_hit(p) for p in response.points]

    def points_at(self, *, org: str, positions: Mapping[str, Sequence[int]]) -> list[SearchHit]:
        wanted = {document: list(p) for document, p in positions.items() if p}
        if not wanted:
            return []
        flt = self._filter(
            org,
            should=[
                models.Filter(
                    must=[
                        models.FieldCondition(key=DOCUMENT, match=models.MatchValue(value=document)),
                        models.FieldCondition(key=POSITION, match=models.MatchAny(any=p)),
                    ]
                )
                for document, p in wanted.items()
            ],
        )
        limit = sum(len(p) for p in wanted.values())
        with _unavailable_is_transient("scroll"):
            records, _ = self._client.scroll(self.collection, scroll_filter=flt, limit=limit, with_payload=True)
        return [SearchHit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def close(self) -> None:
        self._client.close()

    # --- Whole-collection operations for backups (ingestion.store.backup): every tenant at once.

    def points_total(self) -> int:
        with _unavailable_is_transient("count"):
            return int(self._client.count(self.collection, exact=True).count)

    def scroll_all(self, *, page: int = _SCROLL_PAGE) -> Iterator[StoredPoint]:
        """Every point of every organization, with its vectors and payload."""
        offset: Any = None
        while True:
            with _unavailable_is_transient("scroll"):
                records, offset = self._client.scroll(
                    self.collection, limit=page, offset=offset, with_payload=True, with_vectors=True
                )
            for r in records:
                vector: Any = r.vector if isinstance(r.vector, dict) else {}
                yield StoredPoint.from_record(r.id, vector, r.payload)
            if offset is None:
                return

    def wipe(self) -> None:
        """Drop the collection and create it again, empty, with its payload indexes."""
        with _unavailable_is_transient("collection drop"):
            self._client.delete_collection(self.collection)
        self._ensure_collection(self._dimension)

    def _headers(self) -> dict[str, str]:
        return {"api-key": self._api_key} if self._api_key else {}

    def snapshot_download(self, target: Path, *, timeout: float = 3600.0) -> str:
        """Have the server snapshot the collection, download the snapshot to ``target``, delete it
        on the server, and return the file's SHA-256. In a cluster a collection snapshot holds
        only the shards of the node that answers (see docs/operations.md)."""
        if not self.url:
            raise SnapshotsUnsupported("qdrant-client's local mode has no snapshots")
        with _unavailable_is_transient("snapshot"):
            description = self._client.create_snapshot(self.collection, wait=True)
        if description is None:
            raise TransientError("Qdrant did not describe the snapshot it made")
        digest = hashlib.sha256()
        try:
            with (
                httpx.stream(
                    "GET",
                    f"{self.url}/collections/{self.collection}/snapshots/{description.name}",
                    headers=self._headers(),
                    timeout=timeout,
                ) as response,
                target.open("wb") as out,
            ):
                response.raise_for_status()
                for block in response.iter_bytes(1 << 20):
                    digest.update(block)
                    out.write(block)
        finally:
            self._client.delete_snapshot(self.collection, description.name, wait=True)
        checksum = digest.hexdigest()
        if description.checksum and description.checksum != checksum:
            raise TransientError(f"the downloaded snapshot's checksum {checksum} is not the server's")
        return checksum

    def snapshot_upload(self, source: Path, *, checksum: str | None = None, timeout: float = 3600.0) -> None:
        """Replace the collection by the snapshot file ``source`` (uploaded to the server, which
        recovers from it: the snapshot's points, vectors and indexes win over what is there)."""
        if not self.url:
            raise SnapshotsUnsupported("qdrant-client's local mode has no snapshots")
        params = {"priority": "snapshot", "wait": "true", **({"checksum": checksum} if checksum else {})}
        with source.open("rb") as fh:
            response = httpx.post(
                f"{self.url}/collections/{self.collection}/snapshots/upload",
                params=params,
                files={"snapshot": (source.name, fh, "application/octet-stream")},
                headers=self._headers(),
                timeout=timeout,
            )
        response.raise_for_status()
