"""The admin's upload page: staff only, CSRF-protected, several files at once, limits enforced."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from resolvo.knowledge.models import Document

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db: None) -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_upload_page_adds_several_files_and_refuses_oversized_ones(
    staff_client: Client, make_kb: Any, settings: Any, vector_store: Any
) -> None:
    settings.INGEST_MAX_BYTES = 2000
    kb = make_kb()
    url = f"/admin/knowledge/knowledgebase/{kb.pk}/upload/"
    page = staff_client.get(url)
    assert page.status_code == 200 and b'type="file"' in page.content and b"multiple" in page.content
    response = staff_client.post(
        url,
        {
            "documents": [
                SimpleUploadedFile("a.md", b"# A\nHold the button."),
                SimpleUploadedFile("b.txt", b"Plain text help."),
                SimpleUploadedFile("big.txt", b"x " * 5000),
            ]
        },
    )
    assert response.status_code == 302
    docs = {d.source: d for d in Document.objects.filter(knowledge_base=kb)}
    assert set(docs) == {"a.md", "b.txt", "big.txt"}
    assert docs["a.md"].status == Document.Status.QUEUED and docs["a.md"].file
    assert docs["big.txt"].status == Document.Status.FAILED and "over the upload limit" in docs["big.txt"].error


def test_upload_requires_staff_and_csrf(make_kb: Any) -> None:
    kb = make_kb()
    url = f"/admin/knowledge/knowledgebase/{kb.pk}/upload/"
    anonymous = Client()
    assert anonymous.get(url).status_code == 302  # to the login page
    user = get_user_model().objects.create_user("agent", "agent@example.com", "pw")
    anonymous.force_login(user)
    assert anonymous.get(url).status_code == 302  # not staff
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.create_superuser("root2", "r@example.com", "pw"))
    response = strict.post(url, {"documents": [SimpleUploadedFile("a.md", b"# A")]})
    assert response.status_code == 403
    assert not Document.objects.filter(knowledge_base=kb).exists()


def test_document_list_renders_with_a_bounded_number_of_queries(
    staff_client: Client, make_kb: Any, django_assert_max_num_queries: Any
) -> None:
    kb = make_kb()
    for i in range(30):
        Document.objects.create(knowledge_base=kb, source=f"doc{i}.md", status=Document.Status.INDEXED)
    with django_assert_max_num_queries(12):
        response = staff_client.get("/admin/knowledge/document/")
    assert response.status_code == 200 and b"doc29.md" in response.content
