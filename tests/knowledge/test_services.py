"""Ingestion through the services, against PostgreSQL, the embedded Qdrant engine and the real model."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.types import TransientError
from resolvo.knowledge import jobs, services, vectors
from resolvo.knowledge.models import Document
from tests.documents import docx_bytes, pdf_bytes

pytestmark = pytest.mark.django_db

S = Document.Status

ARTICLE_V1 = b"""---
title: Resetting the Lumen Hub
url: https://help.example/reset
---
# Resetting the Lumen Hub

## Soft reset
Unplug the hub for ten seconds, then plug it back in. The ring light pulses white while it starts.

## Factory reset
Hold the pinhole button for 15 seconds until the ring flashes amber. All rooms and scenes are erased.
"""

ARTICLE_V2 = ARTICLE_V1.replace(
    b"Hold the pinhole button for 15 seconds until the ring flashes amber.",
    b"Press the reset key twice; the ring glows cyan when the hub restarts.",
)


def ingest(kb: Any, name: str, content: bytes) -> Document:
    doc = services.document_upload(knowledge_base=kb, filename=name, content=content)
    jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    return doc


def texts(kb: Any, doc: Document) -> list[str]:
    store = vectors.get_store()
    hits = store.points_at(org=str(kb.organization_id), positions={str(doc.pk): list(range(doc.chunk_count + 5))})
    return [h.payload["text"] for h in sorted(hits, key=lambda h: h.payload["position"])]


def test_markdown_document_is_indexed_with_sections_and_front_matter(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    doc = ingest(kb, "reset.md", ARTICLE_V1)
    assert doc.status == S.INDEXED, doc.error
    assert doc.title == "Resetting the Lumen Hub"
    assert doc.url == "https://help.example/reset"
    assert doc.chunk_count >= 1 and doc.chunks_done == doc.chunk_count
    assert doc.parse_ms is not None and doc.embed_ms is not None
    assert vector_store.count(org=str(kb.organization_id), document=str(doc.pk)) == doc.chunk_count
    hits = vector_store.points_at(org=str(kb.organization_id), positions={str(doc.pk): [0]})
    assert hits[0].payload["source"] == "reset.md"
    assert hits[0].payload["kb"] == str(kb.pk)
    assert hits[0].payload["tokens"] <= 256


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "guide.pdf",
            pdf_bytes(["Pairing a bulb", "Hold the bulb switch three times to pair it."], title="Bulb guide"),
            "three times",
        ),
        (
            "guide.docx",
            docx_bytes(
                [("Pairing", "Hold the bulb switch three times to pair it.")], table=[["Model", "Watts"], ["A19", "9"]]
            ),
            "three times",
        ),
        (
            "guide.html",
            b"<html><head><title>Pairing</title></head><body><nav>Home | Shop | Login</nav><main><h1>Pairing</h1><p>Hold the bulb switch three times to pair it.</p></main><footer>Copyright Lumen</footer></body></html>",
            "three times",
        ),
        ("guide.txt", "Café guide: hold the bulb switch three times to pair it.".encode("latin-1"), "Café"),
        ("guide-utf16.txt", "Größe guide: hold the bulb switch three times to pair it.".encode("utf-16"), "Größe"),
        (
            "faq.csv",
            b'question,answer\n"How do I pair a bulb?","Hold the bulb switch three times to pair it."\n',
            "three times",
        ),
    ],
)
def test_each_format_is_indexed_and_text_is_decoded(
    make_kb: Any, vector_store: Any, name: str, content: bytes, expected: str
) -> None:
    kb = make_kb()
    doc = ingest(kb, name, content)
    assert doc.status == S.INDEXED, doc.error
    joined = "\n".join(texts(kb, doc))
    assert expected in joined
    assert "Copyright Lumen" not in joined and "Login" not in joined


def test_reingesting_unchanged_document_changes_nothing(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    doc = ingest(kb, "reset.md", ARTICLE_V1)
    ids_before = vector_store.point_ids(org=str(kb.organization_id), document=str(doc.pk))
    again = services.document_upload(knowledge_base=kb, filename="reset.md", content=ARTICLE_V1)
    assert again.pk == doc.pk and again.version == 1 and again.status == S.INDEXED
    # Even a forced re-run embeds nothing: every chunk is already stored under its id.
    Document.objects.filter(pk=doc.pk).update(status=S.QUEUED)
    outcome = jobs.document_ingest_run(document_id=doc.pk)
    assert outcome.status == S.INDEXED and outcome.embedded == 0 and outcome.deleted == 0
    assert vector_store.point_ids(org=str(kb.organization_id), document=str(doc.pk)) == ids_before


def test_changed_document_replaces_its_chunks(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    doc = ingest(kb, "reset.md", ARTICLE_V1)
    doc2 = ingest(kb, "reset.md", ARTICLE_V2)
    assert doc2.pk == doc.pk and doc2.version == 2 and doc2.status == S.INDEXED
    joined = "\n".join(texts(kb, doc2))
    assert "glows cyan" in joined and "flashes amber" not in joined
    assert vector_store.count(org=str(kb.organization_id), document=str(doc.pk)) == doc2.chunk_count


def test_delete_removes_points_file_and_row(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    doc = ingest(kb, "reset.md", ARTICLE_V1)
    keep = ingest(kb, "other.md", b"# Other\nSchedules turn the lights on at sunset.")
    path = doc.file.path
    assert jobs.document_delete_run(document_id=doc.pk) is True
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert vector_store.count(org=str(kb.organization_id), document=str(doc.pk)) == 0
    assert vector_store.count(org=str(kb.organization_id), document=str(keep.pk)) == keep.chunk_count
    import os

    assert not os.path.exists(path)
    assert jobs.document_delete_run(document_id=doc.pk) is False  # idempotent


BAD_INPUTS = [
    ("broken.pdf", pdf_bytes(["Some text"])[:300], "PDF"),
    ("empty.md", b"", "empty"),
    ("junk.txt", bytes(range(256)) * 40, "not"),
    ("picture.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "Unsupported"),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD_INPUTS)
def test_bad_input_fails_only_its_document_with_a_readable_reason(
    make_kb: Any, vector_store: Any, name: str, content: bytes, reason: str
) -> None:
    kb = make_kb()
    good = ingest(kb, "good.md", b"# Good\nThe hub supports 50 bulbs.")
    bad = ingest(kb, name, content)
    assert bad.status == S.FAILED
    assert reason.lower() in bad.error.lower(), bad.error
    assert "Traceback" not in bad.error
    good.refresh_from_db()
    assert good.status == S.INDEXED
    assert vector_store.count(org=str(kb.organization_id), document=str(bad.pk)) == 0


def test_encrypted_pdf_fails_with_reason(make_kb: Any, vector_store: Any) -> None:
    from tests.documents import encrypted_pdf_bytes

    kb = make_kb()
    bad = ingest(kb, "locked.pdf", encrypted_pdf_bytes("secret text"))
    assert bad.status == S.FAILED and "encrypted" in bad.error.lower()


def test_file_over_the_size_limit_is_refused_without_storing_it(make_kb: Any, vector_store: Any, settings: Any) -> None:
    settings.INGEST_MAX_BYTES = 1000
    kb = make_kb()
    doc = services.document_upload(knowledge_base=kb, filename="big.txt", content=b"a " * 600)
    assert doc.status == S.FAILED
    assert "over the upload limit" in doc.error and "1000 bytes" in doc.error
    assert not doc.file


def test_two_organizations_never_see_each_others_points(make_kb: Any, vector_store: Any) -> None:
    kb_a = make_kb("alpha", "help")
    kb_b = make_kb("beta", "help")
    doc_a = ingest(kb_a, "reset.md", ARTICLE_V1)
    doc_b = ingest(kb_b, "reset.md", ARTICLE_V1)
    model = vectors.embedder()
    query = model.embed_query("factory reset the hub")
    sparse = vectors.sparse_encoder().embed_query("factory reset the hub")
    for kb, own in ((kb_a, doc_a), (kb_b, doc_b)):
        hits = vector_store.search(
            org=str(kb.organization_id), kb=str(kb.pk), dense=query, sparse=sparse, limit=50, prefetch=50
        )
        assert hits and {h.payload["document"] for h in hits} == {str(own.pk)}
    # Point ids differ per document, so the same file in two tenants never collides.
    assert not vector_store.point_ids(org=str(kb_a.organization_id), document=str(doc_a.pk)) & vector_store.point_ids(
        org=str(kb_b.organization_id), document=str(doc_b.pk)
    )


def test_worker_killed_mid_document_leaves_no_duplicates_and_retry_completes(
    make_kb: Any, vector_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = make_kb()
    long_text = "# Manual\n\n" + "\n\n".join(
        f"## Step {i}\n" + f"Detail {i} about configuring the hub. " * 40 for i in range(12)
    )
    doc = services.document_upload(knowledge_base=kb, filename="manual.md", content=long_text.encode())

    # Die after the first stored batch, the way a killed worker would: nothing after it runs.
    import ingestion.index as index_mod

    real = index_mod.index_documents

    def dying(**kwargs: Any) -> Any:
        def progress(ref: Any, done: int, total: int) -> None:
            kwargs_progress(ref, done, total)
            if done >= 4:
                raise KeyboardInterrupt("worker killed")

        kwargs_progress = kwargs.pop("on_progress")
        return real(**kwargs, batch_size=4, on_progress=progress)

    monkeypatch.setattr(jobs, "index_documents", dying)
    with pytest.raises(KeyboardInterrupt):
        jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == S.EMBEDDING  # the row shows where it died
    partial = vector_store.count(org=str(kb.organization_id), document=str(doc.pk))
    assert 0 < partial < doc.chunk_count

    monkeypatch.setattr(jobs, "index_documents", real)
    # The lease is still held: a duplicate delivery right now does not start a second run...
    assert jobs.document_ingest_run(document_id=doc.pk).status == S.EMBEDDING
    # ...but once it expires (or the beat task recovers it) the retry completes the job.
    Document.objects.filter(pk=doc.pk).update(lease_until=None)
    outcome = jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    assert outcome.status == S.INDEXED and outcome.embedded == doc.chunk_count - partial
    assert vector_store.count(org=str(kb.organization_id), document=str(doc.pk)) == doc.chunk_count


def test_transient_store_failure_requeues_for_retry(
    make_kb: Any, vector_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = make_kb()
    doc = services.document_upload(knowledge_base=kb, filename="a.md", content=b"# A\nText about bulbs.")

    def unavailable(**kwargs: Any) -> Any:
        raise TransientError("Qdrant is unavailable: connection refused")

    monkeypatch.setattr(jobs, "index_documents", unavailable)
    with pytest.raises(TransientError):
        jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == S.QUEUED


def test_urls_on_internal_networks_are_refused_unless_allowed(make_kb: Any, vector_store: Any, settings: Any) -> None:
    from tests.httpserver import Route, serve

    settings.INGEST_ALLOW_PRIVATE_NETWORKS = False
    kb = make_kb()
    with serve({"/admin": Route(body=b"<html><body><main><p>internal secrets</p></main></body></html>")}) as site:
        doc = services.source_add(knowledge_base=kb, url=site.url("/admin"))
        jobs.document_ingest_run(document_id=doc.pk)
    doc.refresh_from_db()
    assert doc.status == S.FAILED and "private or local network address" in doc.error
    assert vector_store.count(org=str(kb.organization_id)) == 0
