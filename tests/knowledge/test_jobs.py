"""The ingestion job under hostile input and unlucky operation: bounded parsing, leases renewed
through every stage, fencing, capped attempts, the sweeper, and ``ingest --wait`` that never
waits on a document nobody is working on. Real PostgreSQL, the embedded Qdrant engine, the
bundled model; hostile files are generated at test time (tests/hostile.py)."""

from __future__ import annotations

import io
import resource
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from resolvo.knowledge import jobs, services
from resolvo.knowledge.models import Document
from tests import hostile

S = Document.Status
GOOD = b"# Pairing\nHold the bulb switch three times to pair it with the hub."


def upload(kb: Any, name: str, content: bytes) -> Document:
    return services.document_upload(knowledge_base=kb, filename=name, content=content, enqueue=False)


@pytest.mark.django_db(transaction=True)
def test_hostile_uploads_fail_alone_within_budget_and_the_good_ones_are_indexed(
    make_kb: Any, vector_store: Any, settings: Any
) -> None:
    """Every input that hurt a worker for an hour in the security review, and the ones that
    already held, in one batch with good documents. Budget stated: the whole batch in under
    4 minutes on a shared 2-core machine (measured about a minute), parsing each file within
    INGEST_PARSE_SECONDS and INGEST_PARSE_MEMORY_MB, and the worker itself growing by under 1 GB."""
    settings.INGEST_PARSE_SECONDS = 30
    settings.INGEST_PARSE_MEMORY_MB = 1024
    kb = make_kb()
    files = {
        "nested.html": hostile.nested_divs_html(100_000),
        "bomb.docx": hostile.docx_bomb(494),
        "zipbomb.docx": hostile.zip_bomb_docx(),
        "rows.csv": hostile.big_csv(290_000),  # 24 MB, just under the upload limit
        "laughs.docx": hostile.billion_laughs_docx(),
        "laughs.xml": hostile.billion_laughs_xml(),
        "bomb.pdf": hostile.pdf_bomb(),
        "junk.txt": hostile.binary_junk(),
        "word.txt": hostile.long_word_text(5 * 1024 * 1024),
        "word-50k.txt": hostile.long_word_text(50_000),
        "heading.md": hostile.long_heading_markdown(120),
        "utf16.txt": hostile.utf16_text(),
        "good-1.md": GOOD,
        "good-2.md": GOOD.replace(b"three", b"five"),
    }
    docs = {name: upload(kb, name, content) for name, content in files.items()}
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcomes = jobs.documents_ingest_run(document_ids=[d.pk for d in docs.values()])
    elapsed = time.monotonic() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert elapsed < 240, f"batch took {elapsed:.0f} s"
    assert grown_mb < 1024, f"the worker grew by {grown_mb:.0f} MB"
    rows = {name: Document.objects.get(pk=d.pk) for name, d in docs.items()}
    assert {pk: o.status for pk, o in outcomes.items()} == {d.pk: d.status for d in rows.values()}
    for name in ("good-1.md", "good-2.md", "nested.html", "utf16.txt"):
        assert rows[name].status == S.INDEXED, (name, rows[name].error)
    failed = {name: row.error for name, row in rows.items() if row.status == S.FAILED}
    for name in ("bomb.docx", "zipbomb.docx", "rows.csv", "junk.txt", "bomb.pdf", "word.txt"):
        assert name in failed, (name, rows[name].status)
    # A 5 MB "word" is no longer one [UNK] token: it is 5 MB of text, over the chunk budget.
    assert "INGEST_MAX_CHUNKS" in failed["rows.csv"] and "INGEST_MAX_CHUNKS" in failed["word.txt"]
    assert "unpacks to" in failed["bomb.docx"] or "limit" in failed["bomb.docx"]
    for name, error in failed.items():
        assert error and "Traceback" not in error and "Internal error" not in error, (name, error)
    # Text that had to change to fit is indexed, and the change is recorded on the document.
    for name in ("word-50k.txt", "heading.md"):
        assert rows[name].status == S.INDEXED, (name, rows[name].error)
        assert rows[name].warnings, name
    assert "broken into pieces" in rows["word-50k.txt"].warnings
    assert "shortened" in rows["heading.md"].warnings
    assert vector_store.count(org=str(kb.organization_id), document=str(rows["word-50k.txt"].pk)) == (
        rows["word-50k.txt"].chunk_count
    )


@pytest.mark.django_db
def test_a_long_file_name_is_shortened_and_recorded_not_fatal(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    name = "Lumen hub reset guide " * 14 + ".md"  # 310 characters
    doc = services.document_upload(knowledge_base=kb, filename=name, content=GOOD)
    jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == S.INDEXED, doc.error
    assert len(doc.source) <= 120 and doc.source.endswith(".md") and doc.original_name == name
    assert "shortened" in doc.warnings
    again = services.document_upload(knowledge_base=kb, filename=name, content=GOOD)
    assert again.pk == doc.pk  # the same name maps to the same document


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_through_a_slow_parse(
    make_kb: Any, vector_store: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_LEASE_SECONDS = 2
    settings.INGEST_HEARTBEAT_SECONDS = 0.5
    import ingestion.parse.bounded as bounded

    real = bounded.parse_bounded

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(4)  # twice the lease
        return real(*args, **kwargs)

    monkeypatch.setattr(bounded, "parse_bounded", slow)
    kb = make_kb()
    doc = upload(kb, "a.md", GOOD)
    seen: list[Any] = []

    def second_delivery() -> None:
        time.sleep(3)
        seen.append(jobs.documents_ingest_run(document_ids=[doc.pk])[doc.pk].status)

    other = threading.Thread(target=second_delivery)
    other.start()
    outcome = jobs.document_ingest_run(document_id=doc.pk)
    other.join()
    doc.refresh_from_db()
    assert outcome.status == S.INDEXED and doc.status == S.INDEXED
    assert seen == [S.PARSING]  # the duplicate found a live lease and left the document alone
    assert doc.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_that_lost_its_lease_writes_nothing_after_the_takeover(
    make_kb: Any, vector_store: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fencing: a stalled run (its lease ran out) and the run that took over never both write."""
    import ingestion.parse.bounded as bounded

    real = bounded.parse_bounded
    release = threading.Event()
    stalled = threading.Event()

    def blocking(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "stalled-run":
            stalled.set()
            release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(bounded, "parse_bounded", blocking)
    settings.INGEST_HEARTBEAT_SECONDS = 3600  # the stalled run's heartbeat never comes
    kb = make_kb()
    doc = upload(kb, "a.md", GOOD)
    first: list[Any] = []
    thread = threading.Thread(
        target=lambda: first.append(jobs.document_ingest_run(document_id=doc.pk)), name="stalled-run"
    )
    thread.start()
    assert stalled.wait(30)
    Document.objects.filter(pk=doc.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    takeover = jobs.document_ingest_run(document_id=doc.pk)
    assert takeover.status == S.INDEXED
    release.set()
    thread.join()
    assert first[0].status == "taken over"
    doc.refresh_from_db()
    assert doc.status == S.INDEXED and doc.attempts == 2 and doc.error == ""
    assert vector_store.count(org=str(kb.organization_id), document=str(doc.pk)) == doc.chunk_count


@pytest.mark.django_db
def test_attempts_are_capped_with_a_readable_failure(make_kb: Any, vector_store: Any, settings: Any) -> None:
    kb = make_kb()
    doc = upload(kb, "a.md", GOOD)
    Document.objects.filter(pk=doc.pk).update(
        status=S.PARSING, attempts=settings.INGEST_MAX_ATTEMPTS, lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert jobs.document_ingest_run(document_id=doc.pk).status == S.FAILED
    doc.refresh_from_db()
    assert doc.status == S.FAILED and f"Stopped after {settings.INGEST_MAX_ATTEMPTS} attempts" in doc.error
    # A retry by a person starts counting again.
    services.document_retry(document=doc)
    doc.refresh_from_db()
    assert doc.attempts == 0 and doc.status == S.QUEUED


def test_the_sweeper_sends_again_what_nobody_works_on(celery_worker: Any, make_kb: Any, settings: Any) -> None:
    """A queued document whose message was lost with its worker, and a run whose worker died
    (lease run out): the beat task sends both again and a real worker finishes them."""
    kb = make_kb()
    lost = upload(kb, "lost.md", GOOD)
    dead = upload(kb, "dead.md", GOOD.replace(b"three", b"four"))
    live = upload(kb, "live.md", GOOD.replace(b"three", b"six"))
    long_ago = timezone.now() - timedelta(seconds=settings.INGEST_QUEUED_STALE_SECONDS + 5)
    Document.objects.filter(pk=lost.pk).update(queued_at=long_ago)
    Document.objects.filter(pk=dead.pk).update(status=S.EMBEDDING, lease_until=timezone.now() - timedelta(seconds=1))
    Document.objects.filter(pk=live.pk).update(status=S.PARSING, lease_until=timezone.now() + timedelta(hours=1))
    from workers.celery import app

    assert app.send_task("workers.tasks.documents_recover_stalled").get(timeout=30) == 2
    _wait_until(lambda: Document.objects.filter(pk__in=[lost.pk, dead.pk], status=S.INDEXED).count() == 2)
    assert Document.objects.get(pk=live.pk).status == S.PARSING  # someone holds it: left alone


def test_a_redelivered_task_takes_over_once_the_dead_workers_lease_runs_out(celery_worker: Any, make_kb: Any) -> None:
    """The worker that held the document died (its lease is live for 3 more seconds and nobody
    renews it); the redelivered task does not drop the document, it comes back after the lease."""
    kb = make_kb()
    doc = upload(kb, "a.md", GOOD)
    Document.objects.filter(pk=doc.pk).update(
        status=S.PARSING, attempts=1, lease_token=7, lease_until=timezone.now() + timedelta(seconds=3)
    )
    from workers.celery import app

    app.send_task("workers.tasks.document_ingest", args=[doc.pk], queue="ingest")
    _wait_until(lambda: Document.objects.filter(pk=doc.pk, status=S.INDEXED).exists(), timeout=60)
    doc.refresh_from_db()
    assert doc.attempts == 2 and doc.lease_token == 8


@pytest.mark.django_db(transaction=True)
def test_ingest_wait_never_waits_on_a_document_nobody_works_on(
    make_kb: Any, vector_store: Any, settings: Any, tmp_path: Any
) -> None:
    """Embedded mode: a previous run died and left the document queued with no message; running
    the same ``ingest --wait`` again finishes it instead of waiting forever."""
    from workers.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    kb = make_kb()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_bytes(GOOD)
    upload(kb, "a.md", GOOD)  # queued, never sent: its process died
    out = io.StringIO()
    started = time.monotonic()
    app.conf.task_always_eager = True
    try:
        call_command("ingest", "--org", "acme", "--kb", "help", "--wait", str(folder), stdout=out)
    finally:
        app.conf.task_always_eager = False
    assert time.monotonic() - started < 120
    assert "indexed 1, failed 0" in out.getvalue()


def test_ingest_wait_refuses_to_wait_when_no_worker_consumes_the_queue(db: None, make_kb: Any, tmp_path: Any) -> None:
    from django.core.management.base import CommandError

    make_kb()
    (tmp_path / "a.md").write_bytes(GOOD)
    with pytest.raises(CommandError, match="no worker consumes the ingest queues"):
        call_command("ingest", "--org", "acme", "--kb", "help", "--wait", str(tmp_path), stdout=io.StringIO())


def test_one_organizations_bulk_upload_does_not_starve_another(celery_worker: Any, make_kb: Any, settings: Any) -> None:
    settings.INGEST_FAIR_SHARE = 2
    settings.INGEST_BATCH_DOCUMENTS = 2
    big, small = make_kb("bulk-co", "help"), make_kb("small-co", "help")
    from django.db import transaction

    with transaction.atomic():
        bulk = [upload(big, f"bulk-{i}.md", GOOD + f" Variant {i}.".encode()) for i in range(12)]
        services.documents_enqueue(document_ids=[d.pk for d in bulk])
    with transaction.atomic():
        mine = services.document_upload(knowledge_base=small, filename="mine.md", content=GOOD)
    ids = [d.pk for d in bulk] + [mine.pk]
    _wait_until(lambda: Document.objects.filter(pk__in=ids, status=S.INDEXED).count() == len(ids), timeout=180)
    finished = dict(Document.objects.filter(pk__in=ids).values_list("pk", "finished_at"))
    last_bulk = max(finished[d.pk] for d in bulk)
    # Six bulk batches were queued first; the small organization's one document did not wait for them all.
    assert finished[mine.pk] < last_bulk
    later = sum(1 for d in bulk if finished[d.pk] > finished[mine.pk])
    assert later >= 6, later


def test_check_deploy_is_clean_with_production_settings() -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "resolvo.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x7Kq-2vN9!pL4sR8@wE1zT6&yU3iO0aS5dF(gH)jK*lZ^cV%bN$mQ#",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "ALLOWED_HOSTS": "help.example.com",
    }
    for var in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(var, None)
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def _wait_until(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s")
