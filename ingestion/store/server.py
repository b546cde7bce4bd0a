"""The Qdrant server adapter (production), through qdrant-client.

The same class runs against qdrant-client's local mode (``path=`` or ``:memory:``), which
implements the same API in-process; that is how the test-suite exercises this adapter without a
server binary.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ingestion.sparse import SparseVector
from ingestion.store.base import DENSE, DOCUMENT, KB, ORG, POSITION, SPARSE, DenseVector, Fusion, SearchHit, StoredPoint
from ingestion.types import TransientError

_SCROLL_PAGE = 1000


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
        try:
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
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise TransientError(f"Qdrant is unavailable: {exc}") from exc

    @staticmethod
    def _filter(org: str, kb: str | None = None, document: str | None = None) -> models.Filter:
        must: list[Any] = [models.FieldCondition(key=ORG, match=models.MatchValue(value=org))]
        if kb is not None:
            must.append(models.FieldCondition(key=KB, match=models.MatchValue(value=kb)))
        if document is not None:
            must.append(models.FieldCondition(key=DOCUMENT, match=models.MatchValue(value=document)))
        return models.Filter(must=must)

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
        try:
            self._client.upsert(self.collection, points=batch, wait=True)
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise TransientError(f"Qdrant upsert failed: {exc}") from exc

    def point_ids(self, *, org: str, document: str) -> set[str]:
        ids: set[str] = set()
        offset: Any = None
        while True:
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
        flt = models.Filter(
            must=[
                models.FieldCondition(key=ORG, match=models.MatchValue(value=org)),
                models.HasIdCondition(has_id=[str(uuid.UUID(i)) for i in ids]),
            ]
        )
        self._client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def delete_where(self, *, org: str, kb: str | None = None, document: str | None = None) -> None:
        self._client.delete(
            self.collection,
            points_selector=models.FilterSelector(filter=self._filter(org, kb, document)),
            wait=True,
        )

    def count(self, *, org: str, kb: str | None = None, document: str | None = None) -> int:
        return int(self._client.count(self.collection, count_filter=self._filter(org, kb, document), exact=True).count)

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
        try:
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
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise TransientError(f"Qdrant search failed: {exc}") from exc
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
        try:
            responses = self._client.query_batch_points(self.collection, requests=requests)
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise TransientError(f"Qdrant search failed: {exc}") from exc
        lists = [[_hit(p) for p in r.points] for r in responses]
        return lists[0], (lists[1] if len(lists) > 1 else [])

    def neighbours(self, *, org: str, document: str, positions: Sequence[int]) -> list[SearchHit]:
        if not positions:
            return []
        flt = self._filter(org, document=document)
        flt.must = [*(flt.must or []), models.FieldCondition(key=POSITION, match=models.MatchAny(any=list(positions)))]
        records, _ = self._client.scroll(self.collection, scroll_filter=flt, limit=len(positions), with_payload=True)
        return [SearchHit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def close(self) -> None:
        self._client.close()
