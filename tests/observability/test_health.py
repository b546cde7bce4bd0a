"""/healthz and /readyz against the real services: PostgreSQL, Redis, the embedded vector store,
an LLM stub server; and each dependency down in turn (a port nothing listens on)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient, Client

from tests.observability.stubs import closed_port, llm_stub

pytestmark = pytest.mark.django_db


@pytest.fixture
def up(settings: Any, vector_store: Any) -> Any:
    """Every dependency up: the test database, Redis, the embedded store and an LLM stub."""
    assert settings.REDIS_URL
    with llm_stub() as stub:
        settings.LLM_BACKEND = "openai"
        settings.LLM_BASE_URL = stub.base
        settings.HEALTH_CHECK_TIMEOUT = 2.0
        yield stub


def test_healthz_answers_without_touching_anything(
    client: Client, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True  # probes speak plain HTTP and address the container by IP
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_200_with_every_check_named_and_timed(client: Client, up: Any) -> None:
    response = client.get("/readyz", HTTP_HOST="10.1.2.3")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "vector_store", "llm"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["latency_ms"], float)
    assert body["checks"]["vector_store"]["detail"] == "embedded"
    assert ("GET", "/v1/models") in [(m, p) for m, p, _ in up.requests]


def test_readyz_under_asgi(up: Any) -> None:
    response = async_to_sync(AsyncClient().get)("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def _failing(client: Client) -> dict[str, Any]:
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    return body


def test_readyz_names_the_database_when_it_is_down(client: Client, up: Any, monkeypatch: Any) -> None:
    # New connections of the default alias go to a closed port (this thread's stays open).
    monkeypatch.setitem(connections.settings["default"], "PORT", str(closed_port()))
    body = _failing(client)
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["error"]
    assert body["checks"]["broker"]["ok"] and body["checks"]["llm"]["ok"]


def test_readyz_checks_every_database_alias(client: Client, up: Any, monkeypatch: Any) -> None:
    replica = {**connections.settings["default"], "PORT": str(closed_port())}
    monkeypatch.setitem(connections.settings, "replica", replica)
    body = _failing(client)
    assert body["failing"] == ["database:replica"]
    assert "refused" in body["checks"]["database:replica"]["error"].lower()


def test_readyz_names_redis_when_it_is_down(client: Client, up: Any, settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    body = _failing(client)
    assert body["failing"] == ["broker"]


def test_readyz_names_the_llm_when_it_is_down_without_leaking_credentials(
    client: Client, up: Any, settings: Any
) -> None:
    settings.LLM_BASE_URL = f"http://admin:s3cret-pass@127.0.0.1:{closed_port()}/v1"
    settings.LLM_API_KEY = "sk-very-secret"
    body = _failing(client)
    assert body["failing"] == ["llm"]
    assert body["checks"]["llm"]["error"] == "connection refused or unreachable"
    text = str(body)
    assert "s3cret" not in text and "sk-very-secret" not in text and "127.0.0.1" not in text


def test_readyz_names_the_llm_when_it_answers_an_error(client: Client, settings: Any, vector_store: Any) -> None:
    with llm_stub(models_status=503) as stub:
        settings.LLM_BACKEND, settings.LLM_BASE_URL = "openai", stub.base
        body = _failing(client)
    assert body["failing"] == ["llm"]
    assert "HTTP 503" in body["checks"]["llm"]["error"]


def test_a_slow_dependency_times_out_instead_of_hanging_the_probe(client: Client, up: Any, settings: Any) -> None:
    settings.HEALTH_CHECK_TIMEOUT = 0.3
    up.models_delay = 2.0
    body = _failing(client)
    assert body["failing"] == ["llm"]
    assert "timed out" in body["checks"]["llm"]["error"]


def test_readyz_names_the_qdrant_server_when_it_is_down(client: Client, up: Any, settings: Any) -> None:
    settings.QDRANT_URL = f"http://127.0.0.1:{closed_port()}"
    body = _failing(client)
    assert body["failing"] == ["vector_store"]


def test_readyz_asks_a_qdrant_server_for_its_readiness_with_the_api_key(client: Client, up: Any, settings: Any) -> None:
    settings.QDRANT_URL = up.base.removesuffix("/v1")
    settings.QDRANT_API_KEY = "qdrant-key"
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["vector_store"]["detail"] == "server"
    readyz = [h for m, p, h in up.requests if p == "/readyz"]
    assert readyz and readyz[-1]["api-key"] == "qdrant-key"


def test_readyz_finds_the_in_process_model_without_loading_it(client: Client, up: Any, settings: Any) -> None:
    from resolvo.answers.llm import hf_loading

    settings.LLM_BACKEND, settings.LLM_MODEL = "transformers", hf_loading.BUNDLED_SMOLLM2
    loaded = dict(hf_loading._models)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["llm"]["detail"] == "model files present"
    assert hf_loading._models == loaded


def test_readyz_names_a_missing_in_process_model(client: Client, up: Any, settings: Any, tmp_path: Any) -> None:
    settings.LLM_BACKEND, settings.LLM_MODEL = "transformers", str(tmp_path / "absent.gguf")
    body = _failing(client)
    assert body["failing"] == ["llm"]
    assert "does not exist" in body["checks"]["llm"]["error"]
