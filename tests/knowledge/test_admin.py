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


@pytest.fixture
def two_tenants(db: None, make_kb: Any) -> dict[str, Any]:
    """Two organizations with a document each, and a user per role in the first one."""
    from resolvo.organizations.models import Membership
    from resolvo.organizations.services import membership_set

    mine, theirs = make_kb("alpha", "help"), make_kb("beta", "secret-plans")
    Document.objects.create(knowledge_base=mine, source="alpha-guide.md", status=Document.Status.INDEXED)
    Document.objects.create(knowledge_base=theirs, source="beta-roadmap.md", status=Document.Status.INDEXED)
    users = {}
    for role in (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.AGENT):
        user = get_user_model().objects.create_user(f"{role}", f"{role}@alpha.example", "pw", is_staff=True)
        membership_set(organization=mine.organization, user=user, role=role)
        users[str(role)] = user
    users["outsider"] = get_user_model().objects.create_user("outsider", "o@x.example", "pw", is_staff=True)
    return {"mine": mine, "theirs": theirs, "users": users}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_organization_admins_see_and_change_only_their_organization(
    two_tenants: dict[str, Any], role: str, vector_store: Any
) -> None:
    client = _client(two_tenants["users"][role])
    mine, theirs = two_tenants["mine"], two_tenants["theirs"]
    listing = client.get("/admin/knowledge/document/")
    assert listing.status_code == 200
    assert b"alpha-guide.md" in listing.content and b"beta-roadmap.md" not in listing.content
    assert b"beta" not in client.get("/admin/knowledge/knowledgebase/").content.lower()
    # The other tenant's objects and pages do not exist for them.
    other_doc = Document.objects.get(source="beta-roadmap.md")
    assert client.get(f"/admin/knowledge/document/{other_doc.pk}/change/").status_code == 302
    assert client.get(f"/admin/knowledge/knowledgebase/{theirs.pk}/upload/").status_code == 302
    response = client.post(
        f"/admin/knowledge/knowledgebase/{theirs.pk}/upload/", {"documents": [SimpleUploadedFile("x.md", b"# X")]}
    )
    assert not Document.objects.filter(knowledge_base=theirs, source="x.md").exists()
    # Their own knowledge base takes uploads.
    response = client.post(
        f"/admin/knowledge/knowledgebase/{mine.pk}/upload/", {"documents": [SimpleUploadedFile("new.md", b"# New")]}
    )
    assert response.status_code == 302 and Document.objects.filter(knowledge_base=mine, source="new.md").exists()
    # Actions on a forged selection touch only their own rows.
    client.post(
        "/admin/knowledge/document/",
        {"action": "retry", "_selected_action": [str(other_doc.pk)], "index": "0"},
    )
    other_doc.refresh_from_db()
    assert other_doc.status == Document.Status.INDEXED
    # Foreign keys offer only their organizations.
    page = client.get("/admin/knowledge/knowledgebase/add/")
    assert page.status_code == 200 and b"Alpha" in page.content and b"Beta" not in page.content
    assert client.get("/admin/organizations/organization/").content.count(b"Beta") == 0


def test_agents_see_their_organization_but_change_nothing(two_tenants: dict[str, Any]) -> None:
    client = _client(two_tenants["users"]["agent"])
    mine = two_tenants["mine"]
    listing = client.get("/admin/knowledge/document/")
    assert listing.status_code == 200 and b"alpha-guide.md" in listing.content and b"beta" not in listing.content
    assert client.get(f"/admin/knowledge/knowledgebase/{mine.pk}/upload/").status_code == 302
    client.post(
        f"/admin/knowledge/knowledgebase/{mine.pk}/upload/", {"documents": [SimpleUploadedFile("a.md", b"# A")]}
    )
    assert not Document.objects.filter(source="a.md").exists()
    assert client.get("/admin/knowledge/knowledgebase/add/").status_code == 403


def test_staff_without_a_membership_see_nothing(two_tenants: dict[str, Any]) -> None:
    client = _client(two_tenants["users"]["outsider"])
    assert client.get("/admin/knowledge/document/").status_code == 403
    index = client.get("/admin/")
    assert index.status_code == 200 and b"alpha" not in index.content.lower() and b"Documents" not in index.content


def test_the_platform_operator_sees_every_organization(two_tenants: dict[str, Any], staff_client: Client) -> None:
    listing = staff_client.get("/admin/knowledge/document/")
    assert b"alpha-guide.md" in listing.content and b"beta-roadmap.md" in listing.content


def test_answer_traces_are_scoped_too(two_tenants: dict[str, Any]) -> None:
    from resolvo.answers.models import AnswerTrace

    for kb, question in ((two_tenants["mine"], "alpha question"), (two_tenants["theirs"], "beta question")):
        AnswerTrace.objects.create(organization=kb.organization, knowledge_base=kb, question=question)
    content = _client(two_tenants["users"]["agent"]).get("/admin/answers/answertrace/").content
    assert b"alpha question" in content and b"beta question" not in content
