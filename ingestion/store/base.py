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
MULTILINGUAL = "multilingual"
"""The optional second dense vector (multilingual model) for questions in other languages; a
collection has it when it was opened with a ``multilingual_dimension``."""

# Payload keys with an index. ``org`` is the tenant field: every query filters on it.
ORG = "org"
KB = "kb"
DOCUMENT = "document"
POSITION = "position"
TAGS = "tags"
"""The document's tags (a keyword list): a scoped search matches any of the tags it is given."""

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


Quantization = Literal["none", "scalar"]
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "scalar")


@dataclass(frozen=True)
class CollectionConfig:
    """How the Qdrant server lays out the chunks collection's dense vectors (the embedded engine
    keeps its defaults: it serves one small installation from one process).

    ``on_disk`` keeps the original vectors on disk (memory-mapped, read on demand) instead of
    pre-loaded in RAM. ``quantization="scalar"`` adds an int8 copy of every vector pinned in RAM
    (a quarter of the size), searched first and rescored against the originals: with ``on_disk``
    it is what lets a collection outgrow the machine's memory. ``hnsw_m`` and
    ``hnsw_ef_construct`` set the graph's links per node and its build-time search width (more:
    better recall, more memory and indexing time); ``hnsw_payload_m`` sets the links of the
    per-tenant graphs built for the indexed payload fields (``None``: the same as ``hnsw_m``).
    Qdrant's multitenancy guide pairs ``hnsw_m=0`` with ``hnsw_payload_m=16`` when every search
    filters on one tenant, as ours do: no global graph is built, only one per organization.
    """

    on_disk: bool = False
    quantization: Quantization = "none"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_payload_m: int | None = None

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}")
        if self.hnsw_m < 0 or (self.hnsw_payload_m is not None and self.hnsw_payload_m < 0):
            raise ValueError("HNSW m and payload_m must be 0 or more")
        if self.hnsw_ef_construct < 4:
            raise ValueError(f"HNSW ef_construct must be 4 or more, got {self.hnsw_ef_construct}")
        if self.hnsw_m == 0 and not self.hnsw_payload_m:
            raise ValueError("hnsw_m=0 builds no global graph: set hnsw_payload_m so each tenant gets one")


@dataclass(frozen=True)
class SetupReport:
    """What :meth:`ServerStore.setup` (or the embedded engine's open) found and did."""

    collection: str
    engine: Literal["server", "embedded"]
    created: bool
    changed: tuple[str, ...] = ()
    """The settings an existing collection did not have yet and was updated to (``on_disk``,
    ``quantization``, ``hnsw``); empty when it already matched."""
    config: CollectionConfig | None = None
    """What the collection was set up with; ``None`` for the embedded engine, which ignores it."""


@dataclass(frozen=True)
class StoredPoint:
    id: str
    dense: DenseVector
    sparse: SparseVector
    payload: dict[str, Any]
    multilingual: DenseVector | None = None
    """The :data:`MULTILINGUAL` vector, in collections that have one."""

    @classmethod
    def from_record(
        cls, point_id: object, vectors: Mapping[str, Any], payload: Mapping[str, Any] | None
    ) -> StoredPoint:
        """A point as either engine returns it (named vectors: ``DENSE`` and ``SPARSE``)."""
        sparse = vectors.get(SPARSE)
        multilingual = vectors.get(MULTILINGUAL)
        return cls(
            id=str(point_id),
            dense=[float(x) for x in vectors.get(DENSE) or ()],
            sparse=SparseVector(
                indices=list(sparse.indices) if sparse is not None else [],
                values=list(sparse.values) if sparse is not None else [],
            ),
            payload=dict(payload or {}),
            multilingual=[float(x) for x in multilingual] if multilingual is not None else None,
        )


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

    def set_payload(self, *, org: str, document: str, payload: Mapping[str, Any]) -> None:
        """Set the given payload keys on every point of one document, in place: vectors and the
        other keys stay as they are (retagging a document re-embeds nothing)."""
        ...

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
        """Hybrid search fused inside Qdrant (Query API prefetch + RRF with ``rrf_k``, or DBSF);
        sparse=None gives dense only. ``tags``: only points with any of them (a filter inside
        the store, on the ``tags`` payload index); ``None`` or empty: no tag scope."""
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
        tags: Sequence[str] | None = None,
    ) -> tuple[list[SearchHit], list[SearchHit]]:
        """The dense and the sparse candidate lists, best first, from one batched request, for
        fusion by the caller (see ``ingestion.fusion``); ``tags`` as in :meth:`search`."""
        ...

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
        """Nearest points by the :data:`MULTILINGUAL` vector, best first (``dense`` holds the
        :data:`DENSE` vector when ``with_vectors``); ``tags`` as in :meth:`search`. Empty when
        the collection has no multilingual vector."""
        ...

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
        """The BM25 candidate list alone (a second lexical query, such as feedback terms)."""
        ...

    def points_at(self, *, org: str, positions: Mapping[str, Sequence[int]]) -> list[SearchHit]:
        """Points at the given positions of the given documents (``{document: [position, ...]}``),
        in one request (merging context around several hits costs one round trip)."""
        ...

    def close(self) -> None: ...
