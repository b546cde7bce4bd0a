"""The multilingual vector in both engines: written with the point, searched on its own, kept
tenant-scoped, read back by a scroll and through a portable backup, and absent (no candidates,
no error) in a collection opened without it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingestion.sparse import SparseEncoder
from ingestion.store import StoredPoint, VectorStore, backup, open_store

DIM, ML_DIM = 8, 6
SPARSE = SparseEncoder()


def _unit(seed: int, dim: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(dim)
    return list(v / np.linalg.norm(v))


def _point(org: str, pos: int, *, multilingual: bool = True) -> StoredPoint:
    return StoredPoint(
        id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{org}-{pos}")),
        dense=_unit(pos, DIM),
        sparse=SPARSE.embed_document(f"text {pos}"),
        payload={"org": org, "kb": org, "document": f"{org}0", "position": pos, "text": f"text {pos}"},
        multilingual=_unit(1000 + pos, ML_DIM) if multilingual else None,
    )


def _open(kind: str, tmp_path: Path, multilingual_dimension: int) -> VectorStore:
    url = f"local:{tmp_path / 'local'}" if kind == "server" else None
    return open_store(
        url=url,
        path=str(tmp_path / "edge"),
        collection=f"chunks__test__{multilingual_dimension}",
        dimension=DIM,
        multilingual_dimension=multilingual_dimension,
    )


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = _open(request.param, tmp_path, ML_DIM)
    yield s
    s.close()


def test_multilingual_candidates_rank_by_that_vector_within_the_tenant(store: VectorStore) -> None:
    store.upsert([_point("1", i) for i in range(6)] + [_point("2", i) for i in range(6)])
    hits = store.multilingual_candidates(org="1", kb="1", vector=_unit(1003, ML_DIM), limit=3, with_vectors=True)
    assert len(hits) == 3 and hits[0].payload["position"] == 3
    assert {h.payload["org"] for h in hits} == {"1"}
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    # ``dense`` is the main (verification) vector, not the multilingual one.
    assert hits[0].dense is not None and np.allclose(hits[0].dense, _unit(3, DIM), atol=1e-5)


def test_lexical_candidates_are_the_bm25_list_alone(store: VectorStore) -> None:
    store.upsert([_point("1", i) for i in range(4)] + [_point("2", i) for i in range(4)])
    hits = store.lexical_candidates(org="1", kb="1", sparse=SPARSE.embed_query("text 2"), limit=5, with_vectors=True)
    assert hits[0].payload["position"] == 2 and {h.payload["org"] for h in hits} == {"1"}
    assert hits[0].dense is not None and len(hits[0].dense) == DIM
    assert store.lexical_candidates(org="1", kb="1", sparse=SPARSE.embed_query("the"), limit=5) == []


def test_points_without_the_vector_are_stored_and_not_candidates(store: VectorStore) -> None:
    store.upsert([_point("1", 0), _point("1", 1, multilingual=False)])
    assert store.count(org="1") == 2
    hits = store.multilingual_candidates(org="1", kb="1", vector=_unit(1001, ML_DIM), limit=5)
    assert [h.payload["position"] for h in hits] == [0]


def test_scroll_and_portable_backup_keep_the_vector(store: VectorStore, tmp_path: Path) -> None:
    store.upsert([_point("1", i) for i in range(3)])
    by_position = {p.payload["position"]: p for p in store.scroll_all()}  # type: ignore[attr-defined]
    assert np.allclose(by_position[2].multilingual, _unit(1002, ML_DIM), atol=1e-5)
    dumped = backup.dump(store, tmp_path / "backup", portable=True)
    backup.wipe(store)
    assert store.count(org="1") == 0
    backup.load(store, tmp_path / "backup", format=dumped.format)
    hits = store.multilingual_candidates(org="1", kb="1", vector=_unit(1001, ML_DIM), limit=1)
    assert hits[0].payload["position"] == 1


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_collection_without_the_vector_has_no_candidates(kind: str, tmp_path: Path) -> None:
    s = _open(kind, tmp_path, 0)
    try:
        s.upsert([_point("1", 0, multilingual=False)])
        assert s.multilingual_candidates(org="1", kb="1", vector=_unit(1000, ML_DIM), limit=5) == []
    finally:
        s.close()
