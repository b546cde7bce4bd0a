"""The embedded store: Qdrant's own engine running in-process through ``qdrant-edge-py``.

Chosen over qdrant-client's local mode (a pure-Python brute-force fallback) after measuring both
(see ``bench/answer.py`` and ``docs/ingestion.md``). A shard directory holds one collection and is
locked by the process that opened it, so the embedded mode runs web and tasks in one process.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import qdrant_edge as qe

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
    DenseVector,
    Fusion,
    SearchHit,
    StoredPoint,
    tenant_scope,
)
from ingestion.types import TransientError

_SCROLL_PAGE = 1000


def _hit(p: Any) -> SearchHit:
    return SearchHit(str(p.id), float(p.score), dict(p.payload or {}), _dense_of(p.vector))


def _dense_of(vector: Any) -> list[float] | None:
    if isinstance(vector, dict):
        dense = vector.get(DENSE)
        return list(dense) if dense is not None else None
    return None


class EdgeStore:
    """One collection as an edge shard at ``<path>/<collection>``. Thread-safe."""

    def __init__(
        self, shard: qe.EdgeShard, collection: str, *, shard_dir: str = "", config: qe.EdgeConfig | None = None
    ) -> None:
        self._shard = shard
        self.collection = collection
        self.shard_dir = shard_dir
        self._config = config
        self._write = threading.Lock()

    @classmethod
    def open(cls, *, path: str, collection: str, dimension: int, multilingual_dimension: int = 0) -> EdgeStore:
        """``multilingual_dimension``: also hold a :data:`MULTILINGUAL` vector of that size."""
        shard_dir = os.path.join(path, collection)
        dense = {DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)}
        if multilingual_dimension:
            dense[MULTILINGUAL] = qe.EdgeVectorParams(size=multilingual_dimension, distance=qe.Distance.Cosine)
        config = qe.EdgeConfig(
            vectors=dense,
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        store = cls(_load_shard(shard_dir, config), collection, shard_dir=shard_dir, config=config)
        store._ensure_indexes()
        return store

    def _ensure_indexes(self) -> None:
        existing = self._shard.info().payload_schema
        wanted: dict[str, Any] = {
            ORG: qe.KeywordIndexParams(is_tenant=True),
            KB: qe.KeywordIndexParams(),
            DOCUMENT: qe.KeywordIndexParams(),
            POSITION: qe.IntegerIndexParams(lookup=True, range=False),
            TAGS: qe.KeywordIndexParams(),
        }
        for field, params in wanted.items():
            if field not in existing:
                self._shard.update(qe.UpdateOperation.create_field_index(field, params))

    @staticmethod
    def _filter(
        org: str,
        kb: str | None = None,
        document: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        must: Sequence[Any] = (),
        should: Sequence[Any] = (),
    ) -> qe.Filter:
        """The tenant scope (:func:`~ingestion.store.base.tenant_scope`), the tag scope (any of
        ``tags``, when given) and extra conditions."""
        scope: list[Any] = [
            qe.FieldCondition(key=key, match=qe.MatchValue(value)) for key, value in tenant_scope(org, kb, document)
        ]
        if tags:
            scope.append(qe.FieldCondition(key=TAGS, match=qe.MatchAny(list(tags))))
        return qe.Filter(must=[*scope, *must], should=list(should) or None)

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        batch = [
            qe.Point(
                id=p.id,
                vector={
                    DENSE: [float(x) for x in p.dense],
                    SPARSE: qe.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    **({MULTILINGUAL: [float(x) for x in p.multilingual]} if p.multilingual is not None else {}),
                },
                payload=p.payload,
            )
            for p in points
        ]
        with self._write:
            self._shard.update(qe.UpdateOperation.upsert_points(batch))
            self._shard.flush()

    def point_ids(self, *, org: str, document: str) -> set[str]:
        ids: set[str] = set()
        offset: Any = None
        flt = self._filter(org, document=document)
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=flt, with_payload=False)
            )
            ids.update(str(r.id) for r in records)
            if offset is None:
                return ids

    def delete_ids(self, *, org: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        flt = self._filter(org, must=[qe.HasIdCondition({uuid.UUID(i) for i in ids})])
        with self._write:
            self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
            self._shard.flush()

    def delete_where(self, *, org: str, kb: str | None = None, document: str | None = None) -> None:
        with self._write:
            self._shard.update(qe.UpdateOperation.delete_points_by_filter(self._filter(org, kb, document)))
            self._shard.flush()

    def count(self, *, org: str, kb: str | None = None, document: str | None = None) -> int:
        return int(self._shard.count(qe.CountRequest(filter=self._filter(org, kb, document), exact=True)))

    def set_payload(self, *, org: str, document: str, payload: Mapping[str, Any]) -> None:
        with self._write:
            self._shard.update(
                qe.UpdateOperation.set_payload_by_filter(self._filter(org, document=document), dict(payload))
            )
            self._shard.flush()

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
        dense_query = qe.Query.Nearest([float(x) for x in dense], using=DENSE)
        if sparse is None or not sparse.indices:
            request = qe.QueryRequest(
                limit=limit, query=dense_query, filter=flt, with_payload=True, with_vector=vectors
            )
        else:
            fused: Any = qe.Fusion.Rrf(k=rrf_k) if fusion == "rrf" else qe.Fusion.Dbsf()
            sparse_query = qe.Query.Nearest(qe.SparseVector(indices=sparse.indices, values=sparse.values), using=SPARSE)
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[
                    qe.Prefetch(limit=prefetch, query=dense_query, filter=flt),
                    qe.Prefetch(limit=prefetch, query=sparse_query, filter=flt),
                ],
                query=fused,
                filter=flt,
                with_payload=True,
                with_vector=vectors,
            )
        return [_hit(p) for p in self._shard.query(request)]

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
        queries = [
            qe.Query.Nearest([float(x) for x in dense], using=DENSE),
            qe.Query.Nearest(qe.SparseVector(indices=sparse.indices, values=sparse.values), using=SPARSE),
        ]
        if not sparse.indices:
            queries = queries[:1]
        results = self._shard.query_batch(
            qe.QueryBatchRequest(
                [
                    qe.QueryRequest(limit=limit, query=q, filter=flt, with_payload=True, with_vector=vectors)
                    for q in queries
                ]
            )
        )
        lists = [[_hit(p) for p in r] for r in results]
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
        if self._config is None or MULTILINGUAL not in self._config.vectors:
            return []
        query = qe.Query.Nearest([float(x) for x in vector], using=MULTILINGUAL)
        return self._query_one(query, org=org, kb=kb, limit=limit, with_vectors=with_vectors, tags=tags)

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
        query = qe.Query.Nearest(qe.SparseVector(indices=sparse.indices, values=sparse.values), using=SPARSE)
        return self._query_one(query, org=org, kb=kb, limit=limit, with_vectors=with_vectors, tags=tags)

    def _query_one(
        self, query: Any, *, org: str, kb: str, limit: int, with_vectors: bool, tags: Sequence[str] | None
    ) -> list[SearchHit]:
        """One nearest-neighbour query in the tenant's scope (and tags), hits with payloads."""
        request = qe.QueryRequest(
            limit=limit,
            query=query,
            filter=self._filter(org, kb, tags=tags),
            with_payload=True,
            with_vector=[DENSE] if with_vectors else False,
        )
        return [_hit(p) for p in self._shard.query(request)]

    def points_at(self, *, org: str, positions: Mapping[str, Sequence[int]]) -> list[SearchHit]:
        wanted = {document: list(p) for document, p in positions.items() if p}
        if not wanted:
            return []
        flt = self._filter(
            org,
            should=[
                qe.Filter(
                    must=[
                        qe.FieldCondition(key=DOCUMENT, match=qe.MatchValue(document)),
                        qe.FieldCondition(key=POSITION, match=qe.MatchAny(p)),
                    ]
                )
                for document, p in wanted.items()
            ],
        )
        limit = sum(len(p) for p in wanted.values())
        records, _ = self._shard.scroll(qe.ScrollRequest(limit=limit, filter=flt, with_payload=True))
        return [SearchHit(str(r.id), 0.0, dict(r.payload or {})) for r in records]

    def optimize(self) -> bool:
        """Build HNSW and merge segments; run from a background task, not on the request path."""
        with self._write:
            return bool(self._shard.optimize())

    def close(self) -> None:
        with self._write:
            self._shard.close()

    # --- Whole-collection operations for backups (ingestion.store.backup): every tenant at once.

    def points_total(self) -> int:
        return int(self._shard.count(qe.CountRequest(exact=True)))

    def scroll_all(self, *, page: int = _SCROLL_PAGE) -> Iterator[StoredPoint]:
        """Every point of every organization, with its vectors and payload."""
        offset: Any = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=page, with_payload=True, with_vector=True)
            )
            for r in records:
                vector: Any = r.vector or {}
                yield StoredPoint.from_record(r.id, vector, r.payload)
            if offset is None:
                return

    def copy_to(self, target: str) -> None:
        """Copy the shard's files to ``target`` (a new folder). Everything is flushed first, and
        the write lock is held throughout, so no write of this process lands mid-copy; no other
        process can write either, because this one holds the shard (its write-ahead log is locked)."""
        with self._write:
            self._shard.flush()
            shutil.copytree(self.shard_dir, target)

    def wipe(self) -> None:
        """Drop every point: an empty shard in place of this one."""
        self.replace_with(None)

    def replace_with(self, source: str | None) -> None:
        """Close the shard, replace its files by a copy of ``source`` (a folder written by
        :meth:`copy_to`), or by an empty shard when ``source`` is None, and open it again."""
        if self._config is None or not self.shard_dir:
            raise RuntimeError("this store was not opened with EdgeStore.open; it cannot be replaced")
        with self._write:
            self._shard.close()
            shutil.rmtree(self.shard_dir, ignore_errors=True)
            if source is not None:
                shutil.copytree(source, self.shard_dir)
            self._shard = _load_shard(self.shard_dir, self._config)
        self._ensure_indexes()


def _load_shard(shard_dir: str, config: qe.EdgeConfig) -> qe.EdgeShard:
    try:
        if os.path.isdir(os.path.join(shard_dir, "wal")):
            return qe.EdgeShard.load(shard_dir, config)
        os.makedirs(shard_dir, exist_ok=True)
        return qe.EdgeShard.create(shard_dir, config)
    except Exception as exc:  # the binding raises a bare Exception
        if "WouldBlock" in str(exc):
            raise TransientError(
                f"The embedded vector store at {shard_dir} is open in another process. "
                "The embedded mode runs web and tasks in one process; stop the other process "
                "or set QDRANT_URL to use a Qdrant server."
            ) from exc
        raise
