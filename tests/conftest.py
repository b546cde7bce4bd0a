"""Fixtures shared by the whole suite: real PostgreSQL, Redis, Celery worker, Qdrant engine, models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "helpcentre"


@pytest.fixture
def vector_store(settings: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh embedded Qdrant store for one test."""
    from resolvo.knowledge import vectors

    vectors.reset()
    settings.QDRANT_URL = ""
    settings.QDRANT_PATH = tmp_path / "qdrant"
    settings.MEDIA_ROOT = tmp_path / "media"
    yield vectors.get_store()
    vectors.reset()


@pytest.fixture
def make_kb(db: None) -> Any:
    from resolvo.knowledge.models import KnowledgeBase
    from resolvo.organizations.models import Organization

    def make(org_slug: str = "acme", kb_name: str = "help") -> KnowledgeBase:
        org, _ = Organization.objects.get_or_create(slug=org_slug, defaults={"name": org_slug.title()})
        kb, _ = KnowledgeBase.objects.get_or_create(organization=org, name=kb_name)
        return kb

    return make


@pytest.fixture
def celery_worker(transactional_db: None, vector_store: Any) -> Iterator[Any]:
    """A real Celery worker consuming the ``ingest`` queue from Redis, in this process.

    In-process because the embedded vector store belongs to one process; the broker, the
    serialization, acknowledgement and retries are Celery's real ones.
    """
    from celery.contrib.testing.worker import start_worker

    from workers.celery import app

    assert not app.conf.task_always_eager, "tests must exercise a real broker"
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=["ingest", "ingest-bulk"],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
