"""A small help centre ingested into a fresh store, and an answer engine sized for CPU tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import DEMO

DEMO_ARTICLES = [
    "hub-status-light-colours.md",
    "wifi-setup-ios.md",
    "wifi-setup-android.md",
    "troubleshoot-integrations.md",
    "warranty.md",
    "plans-and-pricing.md",
]


@pytest.fixture
def answer_settings(settings: Any) -> Iterator[Any]:
    from resolvo.answers.services import answer_engine_reset

    settings.LLM_BACKEND = "transformers"
    settings.LLM_MODEL = "bundled:smollm2-135m-instruct"
    settings.ANSWER_MAX_TOKENS = 40
    settings.ANSWER_CONTEXT_TOKENS = 700
    settings.ANSWER_CONDENSE = "concat"
    answer_engine_reset()
    yield settings
    answer_engine_reset()


@pytest.fixture
def lumen_kb(make_kb: Any, vector_store: Any, answer_settings: Any) -> Any:
    from resolvo.knowledge import jobs, services
    from resolvo.organizations.models import Organization

    kb = make_kb("lumen", "help")
    Organization.objects.filter(pk=kb.organization_id).update(name="Lumen Home")
    kb.refresh_from_db()
    ids = [
        services.document_upload(knowledge_base=kb, filename=name, content=(DEMO / name).read_bytes(), enqueue=False).pk
        for name in DEMO_ARTICLES
    ]
    outcomes = jobs.documents_ingest_run(document_ids=ids)
    assert all(o.status == "indexed" for o in outcomes.values()), outcomes
    return kb


@pytest.fixture
def llm_down(answer_settings: Any) -> Any:
    """The OpenAI-compatible backend pointed at a loopback port nobody listens on."""
    import socket

    from resolvo.answers.services import answer_engine_reset

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer_settings.LLM_BACKEND = "openai"
    answer_settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    answer_settings.LLM_MODEL = "llama"
    answer_settings.LLM_CONTEXT_WINDOW = 8192
    answer_engine_reset()
    return answer_settings
