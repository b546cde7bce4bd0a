"""End to end through Redis and a real Celery worker: commands, tasks, retries, URLs."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from resolvo.knowledge import jobs, services
from resolvo.knowledge.models import Document, KnowledgeBase
from tests.documents import encrypted_pdf_bytes, pdf_bytes
from tests.httpserver import Route, serve

S = Document.Status


def kb_status(org: str, kb: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("kb_status", "--org", org, "--kb", kb, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_ingest_command_with_mixed_batch_through_the_worker(celery_worker: Any, tmp_path: Path, settings: Any) -> None:
    settings.INGEST_MAX_BYTES = 200_000
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    (folder / "reset.md").write_bytes(b"# Reset\nHold the button for 15 seconds.")
    (folder / "nested" / "billing.txt").write_text("Invoices are emailed on the 1st of each month.", encoding="utf-16")
    (folder / "manual.pdf").write_bytes(pdf_bytes(["Pair bulbs by switching them on and off three times."]))
    (folder / "locked.pdf").write_bytes(encrypted_pdf_bytes("secret"))
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n garbage garbage")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "junk.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 500)
    (folder / "huge.txt").write_bytes(b"word " * 50_000)
    (folder / ".hidden.md").write_bytes(b"# hidden\nnot ingested")

    out = io.StringIO()
    call_command("ingest", "--org", "acme", "--kb", "help", "--create", "--wait", str(folder), stdout=out)
    assert "indexed 3, failed 6" in out.getvalue()

    status = kb_status("acme", "help")
    by_source = {d["source"]: d for d in status["documents"]}
    assert ".hidden.md" not in by_source
    assert {s for s, d in by_source.items() if d["status"] == "indexed"} == {"reset.md", "billing.txt", "manual.pdf"}
    reasons = {s: d["error"].lower() for s, d in by_source.items() if d["status"] == "failed"}
    assert "encrypted" in reasons["locked.pdf"]
    assert "pdf" in reasons["corrupt.pdf"]
    assert "empty" in reasons["empty.txt"]
    assert "not" in reasons["junk.txt"] and "text" in reasons["junk.txt"]
    assert "unsupported" in reasons["tool.exe"]
    assert "over the upload limit" in reasons["huge.txt"]
    assert status["summary"]["indexed"] == 3 and status["summary"]["failed"] == 6

    human = io.StringIO()
    call_command("kb_status", "--org", "acme", "--kb", "help", stdout=human)
    assert "encrypted" in human.getvalue().lower()


def test_upload_is_ingested_by_the_worker_after_commit(celery_worker: Any) -> None:
    from resolvo.organizations.models import Organization

    org = Organization.objects.create(slug="acme", name="Acme")
    kb = KnowledgeBase.objects.create(organization=org, name="help")
    doc = services.document_upload(knowledge_base=kb, filename="a.md", content=b"# A\nThe hub holds 50 bulbs.")
    _wait_for(doc.pk)
    doc.refresh_from_db()
    assert doc.status == S.INDEXED and doc.chunk_count == 1 and doc.attempts == 1


def test_urls_and_sitemaps_through_the_worker(celery_worker: Any) -> None:
    page = b"<html><head><title>Warranty</title></head><body><nav>Shop Login</nav><article><h1>Warranty</h1><p>Bulbs carry a 3 year warranty.</p></article></body></html>"

    def routes(base: str) -> dict[str, Route]:
        other_host = base.replace("127.0.0.1", "localhost")
        return {
            "/sitemap.xml": Route(
                body=(
                    '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    f"<url><loc>{base}/warranty</loc></url><url><loc>{base}/moved</loc></url>"
                    f"<url><loc>{base}/slow</loc></url><url><loc>{other_host}/elsewhere</loc></url>"
                    "</urlset>"
                ).encode(),
                content_type="application/xml",
            ),
            "/warranty": Route(body=page),
            "/moved": Route(status=302, headers={"Location": f"{other_host}/warranty"}),
            "/slow": Route(body=page, delay=5),
        }

    from resolvo.organizations.models import Organization

    org = Organization.objects.create(slug="acme", name="Acme")
    KnowledgeBase.objects.create(organization=org, name="web")
    with serve(routes) as site:
        call_command("ingest", "--org", "acme", "--kb", "web", "--wait", site.url("/sitemap.xml"), stdout=io.StringIO())
        status = kb_status("acme", "web")
    by_source = {d["source"]: d for d in status["documents"]}
    sitemap = by_source.pop(site.url("/sitemap.xml"))
    assert sitemap["kind"] == "sitemap" and sitemap["status"] == "indexed" and sitemap["title"] == "Sitemap: 3 page(s)"
    # Same host only: the sitemap's off-host entry is not followed.
    assert set(by_source) == {site.url("/warranty"), site.url("/moved"), site.url("/slow")}
    assert {d["parent"] for d in by_source.values()} == {sitemap["id"]}
    assert by_source[site.url("/warranty")]["status"] == "indexed"
    assert by_source[site.url("/warranty")]["title"] == "Warranty"
    assert "another host" in by_source[site.url("/moved")]["error"]
    slow = by_source[site.url("/slow")]
    assert slow["status"] == "failed" and "timed out" in slow["error"].lower()


def _wait_for(document_id: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Document.objects.filter(pk=document_id, status__in=[S.QUEUED, S.PARSING, S.EMBEDDING]).exists():
            return
        time.sleep(0.2)
    pytest.fail(f"document {document_id} still in progress after {timeout} s")


def test_unreadable_sitemap_is_recorded_as_a_failed_document(db: None, vector_store: Any) -> None:
    from resolvo.organizations.models import Organization

    org = Organization.objects.create(slug="acme", name="Acme")
    kb = KnowledgeBase.objects.create(organization=org, name="web")
    with serve({"/sitemap.xml": Route(body=b"<html>not a sitemap", content_type="text/html")}) as site:
        doc = services.source_add(knowledge_base=kb, url=site.url("/sitemap.xml"), enqueue=False)
        missing = services.source_add(knowledge_base=kb, url=site.url("/gone/sitemap.xml"), enqueue=False)
        jobs.documents_ingest_run(document_ids=[doc.pk, missing.pk])
    doc.refresh_from_db()
    missing.refresh_from_db()
    assert doc.status == S.FAILED and "sitemap could not be read" in doc.error.lower()
    assert missing.status == S.FAILED and "404" in missing.error
    assert not Document.objects.filter(parent__isnull=False).exists()


def test_admin_form_and_command_take_one_path_for_urls(celery_worker: Any, settings: Any) -> None:
    """A sitemap added in the admin and the same sitemap given to ``manage.py ingest`` end in the
    same documents, statuses and errors: one service, whichever door."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from resolvo.organizations.models import Organization

    page = b"<html><head><title>Reset</title></head><body><main><p>Hold the button for 15 seconds.</p></main></body></html>"

    def routes(base: str) -> dict[str, Route]:
        urlset = "".join(f"<url><loc>{base}{p}</loc></url>" for p in ("/reset", "/gone"))
        return {
            "/sitemap.xml": Route(
                body=f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urlset}</urlset>'.encode(),
                content_type="application/xml",
            ),
            "/reset": Route(body=page),
        }

    org = Organization.objects.create(slug="acme", name="Acme")
    via_admin = KnowledgeBase.objects.create(organization=org, name="admin")
    KnowledgeBase.objects.create(organization=org, name="cli")
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    with serve(routes) as site:
        response = client.post(
            f"/admin/knowledge/knowledgebase/{via_admin.pk}/upload/", {"urls": site.url("/sitemap.xml")}
        )
        assert response.status_code == 302
        call_command("ingest", "--org", "acme", "--kb", "cli", "--wait", site.url("/sitemap.xml"), stdout=io.StringIO())
        deadline = time.monotonic() + 60
        while Document.objects.filter(status__in=[S.QUEUED, S.PARSING, S.EMBEDDING]).exists():
            assert time.monotonic() < deadline, "ingestion did not finish"
            time.sleep(0.2)

    def outcome(kb_name: str) -> list[tuple[str, str, str, str]]:
        docs = kb_status("acme", kb_name)["documents"]
        return sorted((d["source"], d["kind"], d["status"], d["error"]) for d in docs)

    assert outcome("admin") == outcome("cli")
    assert [(s.rsplit("/", 1)[-1], k, st) for s, k, st, _ in outcome("cli")] == [
        ("gone", "url", "failed"),
        ("reset", "url", "indexed"),
        ("sitemap.xml", "sitemap", "indexed"),
    ]
