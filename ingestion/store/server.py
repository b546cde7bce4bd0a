"""The Qdrant server adapter (production), through qdrant-client.

The same class runs against qdrant-client's local mode (``path=`` or ``:memory:``), which
implements the same API in-process; that is how the test-suite exercises this adapter without a
server binary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ingestion.sparse import SparseVector
from ingestion.store.base import (
    DENSE,
    DOCUMENT,
    KB,
    ORG,
    POSITION,
    SPARSE,
    DenseVector,
    Fusion,
    SearchHit,
    StoredPoint,
    tenant_scope,
)
from ingestion.types import TransientError

_SCROLL_PAGE = 1000


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


class ServerStore:
    def __init__(self, client: QdrantClient, collection: str) -> None:
        self._client = client
        self.collection = collection

    @classmethod
    def connect(cls, *, url: str, collection: str, dimension: int, api_key: str | None = None) -> ServerStore:
        """``url`` is an http(s) URL of a Qdrant server, or ``local:PATH`` / ``:memory:`` for
        qdrant-client's in-process local mode."""
        if url == ":memory:":
            client = QdrantClient(location=":memory:")
        elif url.startswith("local:"):
            client = QdrantClient(path=url.removeprefix("local:"))
        else:
            client = QdrantClient(url=url, api_key=api_key, timeout=30)
        store = cls(client, collection)
        store._ensure_collection(dimension)
        return store

    def _ensure_collection(self, dimension: int) -> None:
        with _unavailable_is_transient("collection setup"):
            if not self._client.collection_exists(self.collection):
                self._client.create_collection(
                    self.collection,
                    vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
            for field, schema in (
                (ORG, models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)),
                (KB, models.PayloadSchemaType.KEYWORD),
                (DOCUMENT, models.PayloadSchemaType.KEYWORD),
                (POSITION, models.PayloadSchemaType.INTEGER),
            ):
                self._client.create_payload_index(self.collection, field, field_schema=schema)

    @staticmethod
    def _filter(
        org: str,
        kb: str | None = None,
        document: str | None = None,
        *,
        must: Sequence[Any] = (),
        should: Sequence[Any] = (),
    ) -> models.Filter:
        """The tenant scope (:func:`~ingestion.store.base.tenant_scope`) plus extra conditions."""
        scope: list[Any] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in tenant_scope(org, kb, document)
        ]
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
    ) -> list[SearchHit]:
        flt = self._filter(org, kb)
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
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        flt = self._filter(org, kb)
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
