"""Crash tests with a real Celery worker process on Redis: kill -9 the pool child mid-batch, then
the whole worker, start a new one, and every document still ends indexed with the right number of
points and none twice. Bound stated: everything indexed within 240 s of the second worker starting
(it needs about 20 s to start and load the model, then a lease of 6 s runs out, the sweeper runs
every 3 s and re-sends queued documents after 10 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from resolvo.knowledge import services
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import Organization
from tests.conftest import REPO

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
S = Document.Status
ACTIVE = [S.QUEUED, S.PARSING, S.EMBEDDING]


def _manual(i: int) -> bytes:
    steps = "\n\n".join(f"## Step {n}\n" + f"Detail {n} of manual {i} about pairing the hub. " * 30 for n in range(8))
    return f"# Manual {i}\n\n{steps}".encode()


def _worker(tmp: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "resolvo.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "QDRANT_PATH": str(tmp / "qdrant"),
        "MEDIA_ROOT": str(tmp / "media"),
        "INGEST_LEASE_SECONDS": "6",
        "INGEST_HEARTBEAT_SECONDS": "1",
        "INGEST_QUEUED_STALE_SECONDS": "10",
        "INGEST_SWEEP_SECONDS": "3",
        "INGEST_BATCH_DOCUMENTS": "4",
        "INGEST_MAX_RETRIES": "3",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "workers", "worker", "-B", "-s", str(tmp / f"beat-{name}"),
        "-Q", "ingest,ingest-bulk", "--pool", "prefork", "--concurrency", "1", "-n", f"{name}@%h",
        "--loglevel", "INFO",
    ]  # fmt: skip
    log = open(tmp / f"{name}.log", "wb")
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _pool_children(worker: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def _wait(condition: Any, timeout: float, what: str, *logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    tail = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs if log.exists())
    states = list(Document.objects.values_list("source", "status", "attempts", "error"))
    raise AssertionError(f"{what} not within {timeout} s; documents: {states}\n{tail}")


def test_kill_the_pool_child_then_the_whole_worker_and_every_document_ends_indexed(
    tmp_path: Path, settings: Any
) -> None:
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    settings.MEDIA_ROOT = tmp_path / "media"
    org = Organization.objects.create(slug="acme", name="Acme")
    kb = KnowledgeBase.objects.create(organization=org, name="help")
    docs = [
        services.document_upload(knowledge_base=kb, filename=f"manual-{i}.md", content=_manual(i), enqueue=False)
        for i in range(24)
    ]
    ids = [d.pk for d in docs]
    first = _worker(tmp_path, "first")
    second = None
    try:
        with transaction.atomic():
            services.documents_enqueue(document_ids=ids)
        # 1. Kill -9 the pool child while it embeds a batch.
        _wait(
            lambda: Document.objects.filter(pk__in=ids, status=S.EMBEDDING).exists(),
            120,
            "embedding",
            tmp_path / "first.log",
        )
        children = _pool_children(first)
        assert children, "the prefork worker has a pool child"
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        # 2. The main process starts a new child; as soon as it has indexed something and works on
        #    a batch again, kill the whole worker (24 documents in batches of 4 leave batches to
        #    catch in progress, however fast the machine).
        _wait(
            lambda: (
                Document.objects.filter(pk__in=ids, status=S.INDEXED).exists()
                and Document.objects.filter(pk__in=ids, status__in=[S.PARSING, S.EMBEDDING]).exists()
            ),
            120,
            "work in progress after the pool child was killed",
            tmp_path / "first.log",
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        unfinished = Document.objects.filter(pk__in=ids, status__in=ACTIVE).count()
        assert unfinished, "the second kill happened mid-batch"
        # 3. A new worker (with beat) finishes everything: dead leases run out, lost messages are re-sent.
        second = _worker(tmp_path, "second")
        _wait(
            lambda: not Document.objects.filter(pk__in=ids, status__in=ACTIVE).exists(),
            240,
            "every document finished",
            tmp_path / "first.log",
            tmp_path / "second.log",
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
    rows = list(Document.objects.filter(pk__in=ids))
    assert {d.status for d in rows} == {S.INDEXED}, [(d.source, d.status, d.error) for d in rows]
    from ingestion.store.edge import EdgeStore
    from resolvo.knowledge import vectors

    collection = next(p.name for p in (tmp_path / "qdrant").iterdir() if p.name.startswith("chunks__"))
    store = EdgeStore.open(path=str(tmp_path / "qdrant"), collection=collection, dimension=vectors.embedder().dimension)
    try:
        for doc in rows:
            assert doc.chunk_count > 1
            # Deterministic point ids: a chunk stored twice is the same point, so the count is exact.
            assert store.count(org=str(org.pk), document=str(doc.pk)) == doc.chunk_count, doc.source
    finally:
        store.close()
    assert max(d.attempts for d in rows) >= 2  # some documents were taken over from a dead worker
