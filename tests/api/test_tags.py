"""Scoped knowledge through the APIs: tags on upload and by PATCH (retagged in place), a scoped
search, and the widget's conversation scope; malformed tags answer 422 with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from resolvo.conversations.models import Conversation
from resolvo.knowledge import jobs
from resolvo.knowledge.models import Document
from tests.api.conftest import WidgetClient
from tests.api.test_v1 import BASE, Tenant, assert_error, make_tenant

TV = b"# Resetting the TV\n\nHold the power button on the remote for ten seconds to reset the picture."
PHONE = b"# Resetting the phone\n\nReset the phone: hold the power button and the volume key. Reset power button."


@pytest.fixture
def alpha(db: None, vector_store: Any, settings: Any, tmp_path: Any) -> Tenant:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "token": "100000/minute"}
    return make_tenant("alpha")


def test_v1_upload_patch_and_search_with_tags(alpha: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    api, kb = alpha.owner_api, alpha.kb
    tv = api.upload(kb.pk, "tv.md", TV, tags="TV, remote")
    assert tv.status_code == 202, tv.content
    assert tv.json()["tags"] == ["remote", "tv"]
    phone = api.upload(kb.pk, "phone.md", PHONE, tags="phone")
    jobs.documents_ingest_run(document_ids=[tv.json()["id"], phone.json()["id"]])
    search = api.post(f"/knowledge-bases/{kb.pk}/search", {"query": "reset power button", "limit": 5, "tags": ["tv"]})
    assert search.status_code == 200, search.content
    assert [r["source"] for r in search.json()["results"]] == ["tv.md"]
    unscoped = api.post(f"/knowledge-bases/{kb.pk}/search", {"query": "reset power button", "limit": 5})
    assert {r["source"] for r in unscoped.json()["results"]} >= {"tv.md", "phone.md"}
    # Retag the phone page: it moves into the tv scope without being ingested again.
    with django_capture_on_commit_callbacks(execute=True):
        patched = api.patch(f"/documents/{phone.json()['id']}", {"tags": ["tv", "phone"]})
    assert patched.status_code == 200 and patched.json()["tags"] == ["phone", "tv"]
    assert patched.json()["status"] == "indexed"
    search = api.post(f"/knowledge-bases/{kb.pk}/search", {"query": "reset power button", "limit": 5, "tags": ["tv"]})
    assert {r["source"] for r in search.json()["results"]} == {"tv.md", "phone.md"}


@pytest.mark.parametrize("tags", [["Galaxy S10"], ["tv!"], [""], ["x" * 65], [f"t{i}" for i in range(21)]])
def test_v1_refuses_malformed_tags(alpha: Tenant, tags: list[str]) -> None:
    api = alpha.owner_api
    assert_error(api.patch(f"/documents/{alpha.document.pk}", {"tags": tags}), 422)
    assert_error(api.post(f"/knowledge-bases/{alpha.kb.pk}/search", {"query": "x", "tags": tags}), 422)
    assert Document.objects.get(pk=alpha.document.pk).tags == []


def test_v1_upload_refuses_malformed_tags_and_agents_cannot_retag(alpha: Tenant) -> None:
    error = assert_error(alpha.owner_api.upload(alpha.kb.pk, "x.md", b"# x", tags="Galaxy S10"), 422)
    assert "galaxy-s10" in error["message"]  # the message shows what a tag looks like
    assert not Document.objects.filter(source="x.md").exists()
    assert_error(alpha.agent_api.patch(f"/documents/{alpha.document.pk}", {"tags": ["tv"]}), 403)
    response = alpha.agent_api.client.get(f"{BASE}/documents/{alpha.document.pk}", **alpha.agent_api._headers())
    assert response.json()["tags"] == []


@pytest.mark.django_db(transaction=True)
def test_the_widget_starts_scoped_conversations_and_refuses_malformed_tags(widget: Any) -> None:
    visitor = WidgetClient(widget.public_key)
    assert visitor.boot(tags=["tv"]).status_code == 200
    assert visitor.boot(tags=["not a tag"]).status_code == 422
    scoped = visitor.post("/conversations", {"tags": ["TV", "remote"]})
    assert scoped.status_code == 200 and scoped.json()["tags"] == ["remote", "tv"]
    assert Conversation.objects.get(pk=scoped.json()["id"]).tags == ["remote", "tv"]
    # What the widget sends when the page sets no scope: no body at all.
    plain = visitor.client.post(
        "/api/widget/v1/conversations", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {visitor.token}"
    )
    assert plain.status_code == 200 and plain.json()["tags"] == []
    for bad in (["Galaxy S10"], ["a" * 65], "tv", [1], [f"t{i}" for i in range(21)]):
        refused = visitor.post("/conversations", {"tags": bad})
        assert refused.status_code == 422, (bad, refused.content)
    assert Conversation.objects.count() == 2
