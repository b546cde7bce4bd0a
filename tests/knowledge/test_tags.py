"""Scoped knowledge through the services: where a document's tags come from (front matter, the
upload, a folder, a URL rule), that a scoped search stays inside its tags and its organization
with the filter inside the store, and that retagging rewrites payloads without re-embedding."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ingestion.tags import TagError
from resolvo.knowledge import jobs, services, vectors
from resolvo.knowledge.models import Document
from resolvo.knowledge.selectors import chunks_search

pytestmark = pytest.mark.django_db

TV = b"""---
title: Resetting the TV
manual: Lumen Smart TV manual
---
# Resetting the TV
Hold the power button on the remote for ten seconds to reset the picture settings.
"""

# The phone pages say "reset" and "power button" more often: unscoped, they win the query.
PHONES = [
    f"""---
title: Resetting the phone {i}
tags: [phone]
---
# Resetting the phone {i}
Reset the phone: hold the power button and the volume key. Reset power button reset settings {i}.
""".encode()
    for i in range(4)
]
QUERY = "reset power button settings"


def ingest(kb: Any, name: str, content: bytes, **kwargs: Any) -> Document:
    doc = services.document_upload(knowledge_base=kb, filename=name, content=content, enqueue=False, **kwargs)
    outcome = jobs.documents_ingest_run(document_ids=[doc.pk])[doc.pk]
    assert outcome.status == "indexed", outcome
    doc.refresh_from_db()
    return doc


def payload_tags(kb: Any, doc: Document) -> list[list[str]]:
    hits = vectors.get_store().points_at(org=str(kb.organization_id), positions={str(doc.pk): list(range(10))})
    assert hits
    return [h.payload["tags"] for h in hits]


def test_front_matter_and_upload_tags_reach_every_chunk(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb()
    doc = ingest(kb, "tv.md", TV, tags=["Remote"])
    assert doc.source_tags == ["lumen-smart-tv-manual"]  # the front matter's manual
    assert doc.tags == ["remote"]  # typed at upload
    assert payload_tags(kb, doc) == [["lumen-smart-tv-manual", "remote"]]
    with pytest.raises(TagError, match="not a valid tag"):
        services.document_upload(knowledge_base=kb, filename="x.md", content=b"# x\ny", tags=["bad tag"])
    assert not Document.objects.filter(source="x.md").exists()


def test_a_scoped_search_returns_only_in_scope_chunks_even_when_others_score_higher(
    make_kb: Any, vector_store: Any
) -> None:
    kb = make_kb()
    tv = ingest(kb, "tv.md", TV)
    for i, content in enumerate(PHONES):
        ingest(kb, f"phone-{i}.md", content)
    unscoped = chunks_search(knowledge_base=kb, query=QUERY, limit=2)
    assert {c.source for c in unscoped} <= {f"phone-{i}.md" for i in range(4)}  # the TV page is not top-2
    [scoped] = chunks_search(knowledge_base=kb, query=QUERY, limit=2, tags=["lumen-smart-tv-manual"])
    assert scoped.document_id == tv.pk  # found by the store's filter, not cut from a top-2 list
    phones = chunks_search(knowledge_base=kb, query=QUERY, limit=3, tags=["phone"], mode="dense")
    assert len(phones) == 3 and all(c.source.startswith("phone-") for c in phones)
    assert chunks_search(knowledge_base=kb, query=QUERY, limit=5, tags=["washer"]) == []
    everything = chunks_search(knowledge_base=kb, query=QUERY, limit=10, tags=["phone", "lumen-smart-tv-manual"])
    assert len(everything) == 5


def test_a_scoped_search_never_crosses_organizations(make_kb: Any, vector_store: Any) -> None:
    ours, theirs = make_kb("acme"), make_kb("globex")
    ingest(theirs, "phone.md", PHONES[0])
    ingest(ours, "tv.md", TV)
    assert chunks_search(knowledge_base=ours, query=QUERY, limit=5, tags=["phone"]) == []
    [own] = chunks_search(knowledge_base=theirs, query=QUERY, limit=5, tags=["phone"])
    assert own.source == "phone.md"


def _written(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the points upserted from now on (a point is written only after it is embedded)."""
    calls: list[int] = []
    real = store.upsert

    def counting(points: Any) -> None:
        calls.append(len(points))
        real(points)

    monkeypatch.setattr(store, "upsert", counting)
    return calls


def test_retagging_rewrites_the_payload_in_place_without_re_embedding(
    make_kb: Any, vector_store: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    kb = make_kb()
    doc = ingest(kb, "tv.md", TV, tags=["remote"])
    ids = vector_store.point_ids(org=str(kb.organization_id), document=str(doc.pk))
    calls = _written(vector_store, monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        services.document_tags_set(document=doc, tags=["tv", "living-room"])
    assert payload_tags(kb, doc) == [["living-room", "lumen-smart-tv-manual", "tv"]]
    assert chunks_search(knowledge_base=kb, query=QUERY, limit=3, tags=["remote"]) == []
    assert [c.document_id for c in chunks_search(knowledge_base=kb, query=QUERY, limit=3, tags=["tv"])] == [doc.pk]
    # Re-uploading the same bytes with other tags retags too; the document is not queued again.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.document_upload(knowledge_base=kb, filename="tv.md", content=TV, tags=["tv"])
    assert again.status == Document.Status.INDEXED and again.tags == ["tv"]
    assert payload_tags(kb, doc) == [["lumen-smart-tv-manual", "tv"]]
    assert calls == []  # nothing was embedded or written again
    assert vector_store.point_ids(org=str(kb.organization_id), document=str(doc.pk)) == ids


def test_a_new_version_gives_its_kept_chunks_the_new_tags(
    make_kb: Any, vector_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = make_kb()
    long_tv = TV + b"\n## Cleaning\nWipe the screen with a dry cloth.\n" + b"More about the picture. " * 150
    doc = ingest(kb, "tv.md", long_tv, tags=["remote"])
    assert doc.chunk_count >= 2
    calls = _written(vector_store, monkeypatch)
    changed = long_tv.replace(b"dry cloth", b"soft dry cloth")
    doc = ingest(kb, "tv.md", changed, tags=["tv"])
    assert 0 < sum(calls) < doc.chunk_count  # only the changed chunk was embedded
    assert {tuple(t) for t in payload_tags(kb, doc)} == {("lumen-smart-tv-manual", "tv")}


def test_directory_ingest_tags_files_with_their_folder(make_kb: Any, tmp_path: Path) -> None:
    kb = make_kb()
    (tmp_path / "Galaxy S10").mkdir()
    (tmp_path / "Galaxy S10" / "battery.md").write_text("# Battery\nCharge it overnight.")
    (tmp_path / "tv").mkdir()
    (tmp_path / "tv" / "remote.md").write_text("# Remote\nPair the remote.")
    (tmp_path / "top.md").write_text("# Top\nAt the top level.")
    call_command(
        "ingest", "--org", "acme", "--kb", "help", "--tags-from-folder", "--tag", "manuals", str(tmp_path),
        stdout=io.StringIO(),
    )  # fmt: skip
    tags = dict(Document.objects.filter(knowledge_base=kb).values_list("source", "tags"))
    assert tags == {"battery.md": ["galaxy-s10", "manuals"], "remote.md": ["manuals", "tv"], "top.md": ["manuals"]}
    with pytest.raises(CommandError, match="not a valid tag"):
        call_command("ingest", "--org", "acme", "--kb", "help", "--tag", "Bad Tag", str(tmp_path), stdout=io.StringIO())


def test_url_rules_tag_web_pages_and_a_sitemaps_tags_reach_its_pages(make_kb: Any, vector_store: Any) -> None:
    from tests.httpserver import Route, serve

    kb = make_kb()
    kb.url_tag_rules = {"/docs/tv/": ["tv"]}
    kb.save()
    page = b"<html><head><title>Remote</title></head><body><main><h1>Remote</h1><p>Pair the remote by holding the home key.</p></main></body></html>"
    with serve({"/docs/tv/remote": Route(body=page), "/docs/phone/sim": Route(body=page)}) as site:
        tv = services.source_add(knowledge_base=kb, url=site.url("/docs/tv/remote"), enqueue=False, tags=["help"])
        phone = services.source_add(knowledge_base=kb, url=site.url("/docs/phone/sim"), enqueue=False)
        outcomes = jobs.documents_ingest_run(document_ids=[tv.pk, phone.pk])
    assert {o.status for o in outcomes.values()} == {"indexed"}
    tv.refresh_from_db()
    phone.refresh_from_db()
    assert (tv.tags, tv.source_tags) == (["help"], ["tv"])
    assert phone.source_tags == []
    assert payload_tags(kb, tv) == [["help", "tv"]]
    sitemap = services.source_add(
        knowledge_base=kb, url="https://help.example/sitemap.xml", enqueue=False, tags=["web"]
    )
    child = services.document_add_url(knowledge_base=kb, url="https://help.example/a", parent=sitemap, enqueue=False)
    assert child.tags == ["web"]


@pytest.fixture
def staff_client(db: None) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def test_the_admin_upload_form_takes_tags_and_refuses_malformed_ones(staff_client: Any, make_kb: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    kb = make_kb()
    url = f"/admin/knowledge/knowledgebase/{kb.pk}/upload/"
    refused = staff_client.post(url, {"documents": [SimpleUploadedFile("a.md", b"# A\nx")], "tags": "Galaxy S10"})
    assert refused.status_code == 200 and b"not a valid tag" in refused.content
    assert not Document.objects.exists()
    done = staff_client.post(url, {"documents": [SimpleUploadedFile("a.md", b"# A\nx")], "tags": "TV, remote"})
    assert done.status_code == 302
    assert Document.objects.get(source="a.md").tags == ["remote", "tv"]


def test_editing_tags_in_the_admin_retags_the_chunks(
    staff_client: Any, make_kb: Any, vector_store: Any, django_capture_on_commit_callbacks: Any
) -> None:
    kb = make_kb()
    doc = ingest(kb, "tv.md", TV)
    url = f"/admin/knowledge/document/{doc.pk}/change/"
    form = {"knowledge_base": kb.pk, "source": doc.source, "title": doc.title, "url": "", "tags": "living-room, TV"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    doc.refresh_from_db()
    assert doc.tags == ["living-room", "tv"] and doc.status == Document.Status.INDEXED
    assert payload_tags(kb, doc) == [["living-room", "lumen-smart-tv-manual", "tv"]]
    bad = staff_client.post(url, {**form, "tags": "not a tag"})
    assert bad.status_code == 200 and b"not a valid tag" in bad.content
    rules = staff_client.post(
        f"/admin/knowledge/knowledgebase/{kb.pk}/change/",
        {"organization": kb.organization_id, "name": kb.name, "description": "", "url_tag_rules": '{"docs/": ["x"]}'},
    )
    assert rules.status_code == 200 and b"starting with" in rules.content
