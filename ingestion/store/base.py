"""The vector-store contract shared by the embedded engine and the Qdrant server adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ingestion.sparse import SparseVector

DENSE = "dense"
SPARSE = "bm25"

# Payload keys with an index. ``org`` is the tenant field: every query filters on it.
ORG = "org"
KB = "kb"
DOCUMENT = "document"
POSITION = "position"

Fusion = Literal["rrf", "dbsf"]
DenseVector = Sequence[float] | npt.NDArray[np.float32]


def tenant_scope(org: str, kb: str | None = None, document: str | None = None) -> list[tuple[str, str]]:
    """The ``(payload field, value)`` pairs that every request on a tenant's points must match.

    Both engines build their filters from this one function, so the tenant condition is written
    once. ``org`` is required and may not be empty: a request without it would reach every
    tenant's points.
    """
    if not org:
        raise ValueError("org is required: every request on the vector store is scoped to one organization")
    pairs = [(ORG, org)]
    if kb is not None:
        pairs.append((KB, kb))
    if document is not None:
        pairs.append((DOCUMENT, document))
    return pairs


def collection_name(model_slug: str, dimension: int) -> str:
    """One collection per embedding model: vectors of different models never mix."""
    return f"chunks__{model_slug}__{dimension}"


@dataclass(frozen=True)
class StoredPoint:
    id: str
    dense: DenseVector
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class SearchHit:
    id: str
    score: float
    """The fused score (rank-based for RRF): compare within one result list only."""
    payload: dict[str, Any] = field(default_factory=dict)
    dense: Sequence[float] | None = None
    """The stored dense vector, when requested: lets callers compute absolute similarities."""


class VectorStore(Protocol):
    """Storage for chunk points. ``org`` is required on every read and delete."""

    collection: str

    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    def point_ids(self, *, org: str, document: str) -> set[str]:
        """Ids of all points of one document."""
        ...

    def delete_ids(self, *, org: str, ids: Sequence[str]) -> None: ...

    def delete_where(self, *, org: str, kb: str | None = None, document: str | None = None) -> None: ...

    def count(self, *, org: str, kb: str | None = None, document: str | None = None) -> int: ...

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
        """Hybrid search fused inside Qdrant (Query API prefetch + RRF with ``rrf_k``, or DBSF);
        sparse=None gives dense only."""
        ...

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
        """The dense and the sparse candidate lists, best first, from one batched request, for
        fusion by the caller (see ``ingestion.fusion``)."""
        ...

    def points_at(self, *, org: str, positions: Mapping[str, Sequence[int]]) -> list[SearchHit]:
        """Points at the given positions of the given documents (``{document: [position, ...]}``),
        in one request (merging context around several hits costs one round trip)."""
        ...

    def close(self) -> None: ...
