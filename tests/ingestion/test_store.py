"""Contract tests run against both engines behind ``VectorStore``.

``edge`` is Qdrant's engine in-process (the embedded mode). ``server`` is the production adapter,
driven through qdrant-client's local mode, which implements the same client API as a server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingestion.sparse import SparseEncoder
from ingestion.store import StoredPoint, VectorStore, open_store
from ingestion.store.edge import EdgeStore
from ingestion.types import TransientError

DIM = 8
SPARSE = SparseEncoder()


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    url = f"local:{tmp_path / 'local'}" if request.param == "server" else None
    s = open_store(url=url, path=str(tmp_path / "edge"), collection="chunks__test__8", dimension=DIM)
    yield s
    s.close()


def _vec(seed: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return list(v / np.linalg.norm(v))


def _point(org: str, kb: str, doc: str, pos: int, text: str, seed: int | None = None) -> StoredPoint:
    return StoredPoint(
        id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{org}{kb}{doc}{pos}{text}")),
        dense=_vec(seed if seed is not None else pos),
        sparse=SPARSE.embed_document(text),
        payload={"org": org, "kb": kb, "document": doc, "position": pos, "text": text},
    )


def test_search_never_crosses_organizations(store: VectorStore) -> None:
    store.upsert([_point("1", "1", "10", i, f"reset the hub {i}", seed=i) for i in range(5)])
    store.upsert([_point("2", "2", "20", i, f"reset the hub {i}", seed=i) for i in range(5)])
    hits = store.search(org="1", kb="1", dense=_vec(3), sparse=SPARSE.embed_query("reset hub"), limit=10, prefetch=20)
    assert {h.payload["org"] for h in hits} == {"1"}
    assert len(hits) == 5
    # Same org, other knowledge base id: nothing.
    assert store.search(org="1", kb="2", dense=_vec(3), sparse=None, limit=10, prefetch=20) == []
    assert store.count(org="2") == 5


def test_hybrid_search_ranks_lexical_and_dense_matches(store: VectorStore) -> None:
    texts = ["Factory reset the Lumen Hub", "Pay your invoice by card", "Schedules turn lights on at sunset"]
    store.upsert([_point("1", "1", "10", i, t, seed=100 + i) for i, t in enumerate(texts)])
    dense_only = store.search(org="1", kb="1", dense=_vec(101), sparse=None, limit=1, prefetch=10)
    assert dense_only[0].payload["text"] == texts[1]
    lexical = store.search(
        org="1", kb="1", dense=_vec(999), sparse=SPARSE.embed_query("factory reset"), limit=3, prefetch=10
    )
    assert texts[0] in [h.payload["text"] for h in lexical[:2]]


def test_ids_delete_and_points_at_positions(store: VectorStore) -> None:
    points = [_point("1", "1", "10", i, f"chunk {i}") for i in range(4)]
    store.upsert(points)
    store.upsert(points)  # idempotent
    store.upsert([_point("1", "1", "11", i, f"other {i}") for i in range(4)])
    store.upsert([_point("2", "1", "10", i, f"tenant two {i}") for i in range(4)])
    assert store.point_ids(org="1", document="10") == {p.id for p in points}
    assert store.count(org="1", document="10") == 4
    # Positions of several documents in one request, and only the asking organization's points.
    near = store.points_at(org="1", positions={"10": [1, 2], "11": [0, 3], "12": [1]})
    assert sorted((h.payload["document"], h.payload["position"]) for h in near) == [
        ("10", 1),
        ("10", 2),
        ("11", 0),
        ("11", 3),
    ]
    assert store.points_at(org="1", positions={}) == []
    store.delete_where(org="1", document="11")
    store.delete_where(org="2")
    # Deleting by id is scoped to the organization: another org cannot delete these points.
    store.delete_ids(org="2", ids=[points[0].id])
    assert store.count(org="1", document="10") == 4
    store.delete_ids(org="1", ids=[points[0].id])
    assert store.count(org="1", document="10") == 3
    store.delete_where(org="1", document="10")
    assert store.count(org="1") == 0


def test_edge_store_is_locked_by_its_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    first = EdgeStore.open(path=str(tmp_path), collection="c", dimension=DIM)
    try:
        code = (
            "import sys; from ingestion.store.edge import EdgeStore\n"
            "from ingestion.types import TransientError\n"
            f"try:\n    EdgeStore.open(path={str(tmp_path)!r}, collection='c', dimension={DIM})\n"
            "except TransientError as e:\n    print('LOCKED', e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
        )
        assert "LOCKED" in out.stdout and "QDRANT_URL" in out.stdout, out.stderr
    finally:
        first.close()
    assert TransientError  # the error type the message above came from


def test_edge_store_survives_reopen(tmp_path: Path) -> None:
    s = EdgeStore.open(path=str(tmp_path), collection="c", dimension=DIM)
    s.upsert([_point("1", "1", "10", i, f"chunk {i}") for i in range(3)])
    s.close()
    s = EdgeStore.open(path=str(tmp_path), collection="c", dimension=DIM)
    try:
        assert s.count(org="1") == 3
        assert len(s.search(org="1", kb="1", dense=_vec(1), sparse=None, limit=5, prefetch=5)) == 3
    finally:
        s.close()


def test_search_can_return_stored_dense_vectors(store: VectorStore) -> None:
    store.upsert([_point("1", "1", "10", 0, "reset the hub", seed=5)])
    [hit] = store.search(
        org="1", kb="1", dense=_vec(5), sparse=SPARSE.embed_query("reset"), limit=1, prefetch=5, with_vectors=True
    )
    assert hit.dense is not None
    assert np.allclose(hit.dense, _vec(5), atol=1e-5)
    [plain] = store.search(org="1", kb="1", dense=_vec(5), sparse=None, limit=1, prefetch=5)
    assert plain.dense is None


def test_candidates_returns_dense_and_lexical_lists_for_one_tenant(store: VectorStore) -> None:
    store.upsert(
        [
            _point("1", "1", "10", 0, "invoice payment card", seed=42),
            _point("1", "1", "10", 1, "factory reset hub", seed=7),
        ]
    )
    store.upsert([_point("2", "2", "20", 0, "factory reset hub", seed=42)])
    dense, lexical = store.candidates(
        org="1", kb="1", dense=_vec(42), sparse=SPARSE.embed_query("factory reset"), limit=5, with_vectors=True
    )
    assert [h.payload["position"] for h in dense] == [0, 1]
    assert [h.payload["position"] for h in lexical] == [1]  # only documents with the words
    assert all(h.payload["org"] == "1" for h in dense + lexical)
    assert dense[0].dense is not None


def test_qdrant_rrf_weights_behaviour_is_pinned(tmp_path: Path) -> None:
    """Qdrant's ``Rrf(weights=[1, 3])`` favours the FIRST prefetch in qdrant-client 1.20's local
    mode and in qdrant-edge 0.9, the opposite of what its documentation suggests. We fuse in our
    own code (ingestion/fusion.py) for that reason; if an upgrade changes this, revisit that."""
    import qdrant_edge as qe
    from qdrant_client import QdrantClient, models

    angles = [i * 0.3 for i in range(4)]  # dense order 0,1,2,3; sparse order 3,2,1,0
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "t",
        vectors_config={"d": models.VectorParams(size=2, distance=models.Distance.COSINE)},
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    client.upsert(
        "t",
        [
            models.PointStruct(
                id=i,
                vector={
                    "d": [float(np.cos(a)), float(np.sin(a))],
                    "s": models.SparseVector(indices=[1], values=[i + 1.0]),
                },
            )
            for i, a in enumerate(angles)
        ],
    )
    prefetch = [
        models.Prefetch(query=[1.0, 0.0], using="d", limit=4),
        models.Prefetch(query=models.SparseVector(indices=[1], values=[1.0]), using="s", limit=4),
    ]
    top = client.query_points(
        "t", prefetch=prefetch, query=models.RrfQuery(rrf=models.Rrf(k=10, weights=[1.0, 3.0])), limit=1
    )
    assert top.points[0].id == 0  # the dense favourite, although the sparse list weighs 3x

    shard = qe.EdgeShard.create(
        str(tmp_path / "e"),
        qe.EdgeConfig(
            vectors={"d": qe.EdgeVectorParams(size=2, distance=qe.Distance.Cosine)},
            sparse_vectors={"s": qe.EdgeSparseVectorParams()},
        ),
    )
    shard.update(
        qe.UpdateOperation.upsert_points(
            [
                qe.Point(
                    id=i,
                    vector={
                        "d": [float(np.cos(a)), float(np.sin(a))],
                        "s": qe.SparseVector(indices=[1], values=[i + 1.0]),
                    },
                )
                for i, a in enumerate(angles)
            ]
        )
    )
    edge_top = shard.query(
        qe.QueryRequest(
            limit=1,
            prefetches=[
                qe.Prefetch(limit=4, query=qe.Query.Nearest([1.0, 0.0], using="d")),
                qe.Prefetch(limit=4, query=qe.Query.Nearest(qe.SparseVector(indices=[1], values=[1.0]), using="s")),
            ],
            query=qe.Fusion.Rrf(k=10, weights=[1.0, 3.0]),
        )
    )
    assert edge_top[0].id == 0
    shard.close()


def test_every_request_needs_an_organization(store: VectorStore) -> None:
    store.upsert([_point("1", "1", "10", 0, "reset the hub")])
    with pytest.raises(ValueError, match="org is required"):
        store.count(org="")
    with pytest.raises(ValueError, match="org is required"):
        store.delete_where(org="")
    with pytest.raises(ValueError, match="org is required"):
        store.points_at(org="", positions={"10": [0]})
    assert store.count(org="1") == 1


def _tagged(org: str, doc: str, pos: int, text: str, tags: list[str], seed: int) -> StoredPoint:
    point = _point(org, "1", doc, pos, text, seed=seed)
    return StoredPoint(point.id, point.dense, point.sparse, {**point.payload, "tags": tags})


def test_a_scoped_search_filters_inside_the_store(store: VectorStore) -> None:
    """The out-of-scope chunks are the closest to the query, yet a scoped search with limit=k
    returns k in-scope chunks: the tag filter runs inside the store, not on a cut-off list."""
    query = _vec(1)
    store.upsert([_tagged("1", "10", i, "reset the tv remote", ["tv"], seed=1) for i in range(6)])  # nearest
    store.upsert([_tagged("1", "20", i, f"reset the phone {i}", ["galaxy-s10"], seed=50 + i) for i in range(4)])
    store.upsert([_tagged("1", "30", 0, "reset the phone and tv", ["galaxy-s10", "tv"], seed=99)])
    store.upsert([_tagged("2", "40", i, "reset the phone", ["galaxy-s10"], seed=1) for i in range(3)])  # other org
    hits = store.search(org="1", kb="1", dense=query, sparse=None, limit=3, prefetch=3, tags=["galaxy-s10"])
    assert len(hits) == 3
    assert all("galaxy-s10" in h.payload["tags"] and h.payload["org"] == "1" for h in hits)
    fused = store.search(
        org="1", kb="1", dense=query, sparse=SPARSE.embed_query("reset tv"), limit=5, prefetch=5, tags=["galaxy-s10"]
    )
    assert len(fused) == 5 and {h.payload["document"] for h in fused} == {"20", "30"}
    dense, lexical = store.candidates(
        org="1", kb="1", dense=query, sparse=SPARSE.embed_query("reset tv"), limit=4, tags=["galaxy-s10"]
    )
    assert len(dense) == 4 and len(lexical) == 4
    assert all("galaxy-s10" in h.payload["tags"] for h in dense + lexical)
    # Any of several tags; no tags is the whole knowledge base.
    both = store.search(org="1", kb="1", dense=query, sparse=None, limit=20, prefetch=20, tags=["tv", "galaxy-s10"])
    assert len(both) == 11
    assert len(store.search(org="1", kb="1", dense=query, sparse=None, limit=20, prefetch=20, tags=[])) == 11
    assert store.search(org="1", kb="1", dense=query, sparse=None, limit=5, prefetch=5, tags=["washer"]) == []


def test_set_payload_retags_one_documents_points_in_place(store: VectorStore) -> None:
    store.upsert([_tagged("1", "10", i, f"reset the hub {i}", ["tv"], seed=i) for i in range(3)])
    store.upsert([_tagged("2", "10", 0, "reset the hub", ["tv"], seed=0)])  # same document id, other org
    before = {
        h.id: h
        for h in store.search(org="1", kb="1", dense=_vec(0), sparse=None, limit=5, prefetch=5, with_vectors=True)
    }
    store.set_payload(org="1", document="10", payload={"tags": ["soundbar"]})
    after = store.search(
        org="1", kb="1", dense=_vec(0), sparse=None, limit=5, prefetch=5, with_vectors=True, tags=["soundbar"]
    )
    assert {h.id for h in after} == set(before)
    for hit in after:  # vectors and the rest of the payload are untouched
        assert hit.dense is not None and np.allclose(hit.dense, before[hit.id].dense or [], atol=1e-6)
        assert hit.payload["text"] == before[hit.id].payload["text"]
    assert store.search(org="1", kb="1", dense=_vec(0), sparse=None, limit=5, prefetch=5, tags=["tv"]) == []
    [other] = store.search(org="2", kb="1", dense=_vec(0), sparse=None, limit=5, prefetch=5, tags=["tv"])
    assert other.payload["tags"] == ["tv"]
    with pytest.raises(ValueError, match="org is required"):
        store.set_payload(org="", document="10", payload={"tags": []})


def test_the_embedded_engine_indexes_tags_as_keywords(tmp_path: Path) -> None:
    import qdrant_edge as qe

    store = EdgeStore.open(path=str(tmp_path), collection="chunks__test__8", dimension=DIM)
    store.upsert([_tagged("1", "10", 0, "reset", ["tv", "remote"], seed=0)])
    tags = store._shard.info().payload_schema["tags"]
    store.close()
    assert tags.data_type == qe.PayloadSchemaType.Keyword
    assert tags.points == 1


OPERATIONS = [
    "upsert",
    "point_ids",
    "delete_ids",
    "delete_where",
    "count",
    "set_payload",
    "search",
    "candidates",
    "points_at",
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_server_outage_is_transient_for_every_operation(operation: str) -> None:
    """A Qdrant server that is down surfaces as TransientError (the task retries) from deletes,
    counts and neighbour fetches too, not only from upserts and searches."""
    import socket

    from qdrant_client import QdrantClient

    from ingestion.store.server import ServerStore

    with socket.socket() as probe:  # a loopback port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError):
        ServerStore.connect(url=f"http://127.0.0.1:{port}", collection="c", dimension=DIM)
    down = ServerStore(QdrantClient(url=f"http://127.0.0.1:{port}", timeout=2), "c")
    calls = {
        "upsert": lambda: down.upsert([_point("1", "1", "10", 0, "x")]),
        "point_ids": lambda: down.point_ids(org="1", document="10"),
        "delete_ids": lambda: down.delete_ids(org="1", ids=[str(uuid.uuid4())]),
        "delete_where": lambda: down.delete_where(org="1", document="10"),
        "count": lambda: down.count(org="1"),
        "set_payload": lambda: down.set_payload(org="1", document="10", payload={"tags": ["tv"]}),
        "search": lambda: down.search(org="1", kb="1", dense=_vec(1), sparse=None, limit=1, prefetch=1),
        "candidates": lambda: down.candidates(
            org="1", kb="1", dense=_vec(1), sparse=SPARSE.embed_query("reset"), limit=1
        ),
        "points_at": lambda: down.points_at(org="1", positions={"10": [0, 1]}),
    }
    assert set(calls) == set(OPERATIONS)
    with pytest.raises(TransientError, match="Qdrant"):
        calls[operation]()
