"""``manage.py vectors_setup``: the collection is made, with the QDRANT_* layout, before any
request; a second run changes nothing. Against qdrant-client's local mode (the server adapter) and
the embedded engine, with the bundled embedding model."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ingestion.store.server import ServerStore
from resolvo.knowledge import vectors


def _setup(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("vectors_setup", "--json", *args, stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@pytest.fixture
def local_server(settings: Any, tmp_path: Path) -> Any:
    vectors.reset()
    settings.QDRANT_URL = f"local:{tmp_path / 'local'}"
    settings.QDRANT_ON_DISK = True
    settings.QDRANT_QUANTIZATION = "scalar"
    settings.QDRANT_HNSW_M = 0
    settings.QDRANT_HNSW_EF_CONSTRUCT = 128
    settings.QDRANT_HNSW_PAYLOAD_M = 16
    yield settings
    vectors.reset()


def test_vectors_setup_creates_the_configured_collection_once(local_server: Any) -> None:
    first = _setup()
    model = vectors.embedder()
    assert first["collection"] == f"chunks__{model.slug}__{model.dimension}"
    assert (first["engine"], first["created"], first["changed"]) == ("server", True, [])
    assert first["config"] == {
        "on_disk": True,
        "quantization": "scalar",
        "hnsw_m": 0,
        "hnsw_ef_construct": 128,
        "hnsw_payload_m": 16,
    }
    second = _setup()
    assert (second["created"], second["changed"]) == (False, [])

    client = ServerStore.client(url=local_server.QDRANT_URL)
    dense = client.get_collection(first["collection"]).config.params.vectors["dense"]  # type: ignore[index]
    assert (dense.size, dense.on_disk, dense.hnsw_config.m, dense.hnsw_config.payload_m) == (
        model.dimension,
        True,
        0,
        16,
    )
    client.close()


def test_the_store_serves_from_the_collection_vectors_setup_made(local_server: Any) -> None:
    _setup()
    assert vectors.get_store().count(org="1") == 0


def test_vectors_setup_reports_what_it_changes(local_server: Any) -> None:
    local_server.QDRANT_QUANTIZATION = "none"
    _setup()
    local_server.QDRANT_QUANTIZATION = "scalar"
    out = StringIO()
    call_command("vectors_setup", stdout=out)
    assert "updated quantization" in out.getvalue()


def test_vectors_setup_on_the_embedded_engine(settings: Any, tmp_path: Path) -> None:
    vectors.reset()
    settings.QDRANT_URL = ""
    settings.QDRANT_PATH = tmp_path / "qdrant"
    out = StringIO()
    call_command("vectors_setup", stdout=out)
    assert "created (embedded engine" in out.getvalue()
    assert _setup()["created"] is False
    # The process can open the store afterwards: setup let go of the engine's lock.
    assert vectors.get_store().count(org="1") == 0
    vectors.reset()


def test_vectors_setup_fails_when_qdrant_cannot_be_reached(settings: Any) -> None:
    vectors.reset()
    settings.QDRANT_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="Qdrant collection setup failed"):
        call_command("vectors_setup", "--wait", "0", stdout=StringIO())
    vectors.reset()
