"""The Qdrant collection's layout (``CollectionConfig``) and its idempotent setup.

Driven through qdrant-client's local mode, which keeps the settings it is given, so they can be
read back as a server would report them. Local mode acts on none of them (no HNSW graph, no
quantization, nothing on disk), reports no payload indexes, and ignores updates to dense vectors:
what an update *sends* is checked on a recording client instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from ingestion.store import CollectionConfig, open_store, setup_store
from ingestion.store.server import ServerStore

DIM = 8
COLLECTION = "chunks__test__8"
SCALED = CollectionConfig(on_disk=True, quantization="scalar", hnsw_m=0, hnsw_ef_construct=200, hnsw_payload_m=16)


def _dense(client: QdrantClient) -> models.VectorParams:
    vectors = client.get_collection(COLLECTION).config.params.vectors
    assert isinstance(vectors, dict)
    return vectors["dense"]


def test_setup_creates_the_collection_with_the_configured_layout(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    report = setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=SCALED)
    assert (report.engine, report.created, report.changed, report.config) == ("server", True, (), SCALED)

    client = ServerStore.client(url=url)
    dense = _dense(client)
    assert (dense.size, dense.distance, dense.on_disk) == (DIM, models.Distance.COSINE, True)
    assert dense.hnsw_config is not None
    assert (dense.hnsw_config.m, dense.hnsw_config.ef_construct, dense.hnsw_config.payload_m) == (0, 200, 16)
    assert isinstance(dense.quantization_config, models.ScalarQuantization)
    assert dense.quantization_config.scalar.type == models.ScalarType.INT8
    assert dense.quantization_config.scalar.always_ram is True
    sparse = client.get_collection(COLLECTION).config.params.sparse_vectors
    assert sparse is not None and sparse["bm25"].modifier == models.Modifier.IDF
    assert sparse["bm25"].index is not None and sparse["bm25"].index.on_disk is True
    client.close()


def test_setup_is_idempotent_and_the_store_works_after_it(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=SCALED)
    again = setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=SCALED)
    assert (again.created, again.changed) == (False, ())
    # Connecting (what every process does) never changes an existing collection's layout.
    store = open_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=CollectionConfig())
    assert store.count(org="1") == 0
    store.close()
    client = ServerStore.client(url=url)
    assert _dense(client).on_disk is True
    client.close()


def test_connect_creates_a_missing_collection_with_the_default_layout(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    open_store(url=url, path="", collection=COLLECTION, dimension=DIM).close()
    client = ServerStore.client(url=url)
    dense = _dense(client)
    assert not dense.on_disk and dense.quantization_config is None
    assert dense.hnsw_config is not None and (dense.hnsw_config.m, dense.hnsw_config.ef_construct) == (16, 100)
    client.close()


class RecordingClient:
    """A QdrantClient in local mode that records what setup sends beyond what local mode keeps."""

    def __init__(self, client: QdrantClient) -> None:
        self._client = client
        self.updates: list[dict[str, Any]] = []
        self.indexes: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_collection(self, collection_name: str, **kwargs: Any) -> bool:
        self.updates.append(kwargs)
        return bool(self._client.update_collection(collection_name, **kwargs))

    def create_payload_index(self, collection_name: str, field_name: str, **kwargs: Any) -> Any:
        self.indexes.append((field_name, kwargs["field_schema"]))
        return self._client.create_payload_index(collection_name, field_name, **kwargs)


def test_setup_brings_an_existing_collection_to_a_changed_config(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=CollectionConfig())
    recording = RecordingClient(ServerStore.client(url=url))
    store = ServerStore(recording, COLLECTION)  # type: ignore[arg-type]
    report = store.setup(dimension=DIM, config=SCALED)
    assert (report.created, report.changed) == (False, ("on_disk", "quantization", "hnsw"))
    [update] = recording.updates
    diff = update["vectors_config"]["dense"]
    assert diff.on_disk is True
    assert isinstance(diff.quantization_config, models.ScalarQuantization)
    assert (diff.hnsw_config.m, diff.hnsw_config.ef_construct, diff.hnsw_config.payload_m) == (0, 200, 16)

    store.close()


def test_turning_quantization_off_sends_qdrants_disabled(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=SCALED)
    recording = RecordingClient(ServerStore.client(url=url))
    store = ServerStore(recording, COLLECTION)  # type: ignore[arg-type]
    report = store.setup(dimension=DIM, config=dataclasses.replace(SCALED, quantization="none"))
    assert report.changed == ("quantization",)
    [update] = recording.updates
    # The explicit "Disabled": a missing field would leave the quantized copy in place.
    assert update["vectors_config"]["dense"].quantization_config == models.Disabled.DISABLED
    store.close()


def test_setup_makes_the_tenant_index_with_is_tenant(tmp_path: Path) -> None:
    """Local mode reports no payload indexes, so setup (re)sends every one: what it sends is the
    layout a server gets."""
    url = f"local:{tmp_path / 'local'}"
    recording = RecordingClient(ServerStore.client(url=url))
    ServerStore(recording, COLLECTION).setup(dimension=DIM, config=SCALED)  # type: ignore[arg-type]
    indexes = dict(recording.indexes)
    assert set(indexes) == {"org", "kb", "document", "position", "tags"}
    assert indexes["tags"] == models.PayloadSchemaType.KEYWORD  # scoped searches filter on it
    assert isinstance(indexes["org"], models.KeywordIndexParams) and indexes["org"].is_tenant is True
    assert indexes["position"] == models.PayloadSchemaType.INTEGER


def test_setup_refuses_a_collection_of_another_dimension(tmp_path: Path) -> None:
    url = f"local:{tmp_path / 'local'}"
    setup_store(url=url, path="", collection=COLLECTION, dimension=DIM, config=CollectionConfig())
    with pytest.raises(ValueError, match="8-d vectors"):
        setup_store(url=url, path="", collection=COLLECTION, dimension=16, config=CollectionConfig())


def test_embedded_setup_opens_the_engine_once_and_reports_it(tmp_path: Path) -> None:
    first = setup_store(url=None, path=str(tmp_path / "edge"), collection=COLLECTION, dimension=DIM, config=SCALED)
    assert (first.engine, first.created, first.config) == ("embedded", True, None)
    second = setup_store(url=None, path=str(tmp_path / "edge"), collection=COLLECTION, dimension=DIM, config=SCALED)
    assert second.created is False
    store = open_store(url=None, path=str(tmp_path / "edge"), collection=COLLECTION, dimension=DIM)
    assert store.count(org="1") == 0
    store.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantization": "binary"}, "quantization"),
        ({"hnsw_m": -1}, "0 or more"),
        ({"hnsw_ef_construct": 2}, "ef_construct"),
        ({"hnsw_m": 0}, "payload_m"),
    ],
)
def test_collection_config_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CollectionConfig(**kwargs)
