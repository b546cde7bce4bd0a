"""The agents' REST API, /api/v1/: personal tokens, roles, every endpoint's happy path, filters,
cursor pagination, tenant isolation (every endpoint called with another organization's ids
answers 404), refusals with one error body and never a 500, upload limits, rate limits, and the
OpenAPI schema and docs. Real PostgreSQL and Redis; data built through the services (no LLM:
conversations are handed over right after the customer's message)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from resolvo.conversations import services as conversations
from resolvo.conversations.models import Conversation
from resolvo.knowledge import services as knowledge
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.organizations.models import ApiToken, Membership, Organization
from resolvo.organizations.services import api_token_create, api_token_revoke, membership_set
from resolvo.tickets import services as tickets
from resolvo.tickets.models import Contact, SLAPolicy, Ticket

pytestmark = pytest.mark.django_db

BASE = "/api/v1"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _v1_settings(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # Generous for the suite (one test turns it down to see the refusal).
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "token": "100000/minute"}


class Api:
    """Calls with one API token."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.client = Client(enforce_csrf_checks=True)  # as a script would call: no CSRF token

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"} if self.raw else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(BASE + path, params or {}, **self._headers())

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if "content_type" not in kwargs and not isinstance(body, dict | type(None)):
            kwargs["content_type"] = "application/json"
        if body is None or (isinstance(body, dict) and "content_type" not in kwargs and not _is_upload(body)):
            kwargs.setdefault("content_type", "application/json")
            body = json.dumps(body) if body is not None else b""
        return self.client.post(BASE + path, body, **kwargs, **self._headers())

    def patch(self, path: str, body: Any, content_type: str = "application/json") -> Any:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.patch(BASE + path, data, content_type=content_type, **self._headers())

    def delete(self, path: str) -> Any:
        return self.client.delete(BASE + path, **self._headers())

    def upload(self, kb_id: int, name: str, content: bytes, **extra: Any) -> Any:
        return self.client.post(
            f"{BASE}/knowledge-bases/{kb_id}/documents",
            {"file": SimpleUploadedFile(name, content), **extra},
            **self._headers(),
        )


def _is_upload(body: dict[str, Any]) -> bool:
    return any(isinstance(v, SimpleUploadedFile) for v in body.values())


@dataclass
class Tenant:
    organization: Organization
    kb: KnowledgeBase
    owner: Any
    agent: Any
    owner_api: Api
    agent_api: Api
    owner_token: ApiToken
    ticket: Ticket
    conversation: Conversation
    contact: Contact
    document: Document
    extra: dict[str, Any] = field(default_factory=dict)


def _user(username: str) -> Any:
    return get_user_model().objects.create_user(username=username, password="x", first_name=username.title())


def handed_over(kb: KnowledgeBase, text: str, visitor: str, contact_id: str = "") -> Ticket:
    """A conversation whose customer wrote ``text`` and was handed to a person: its ticket."""
    conversation = conversations.conversation_start(
        organization=kb.organization, knowledge_bases=[kb], visitor_id=visitor, contact_id=contact_id
    )
    conversations.message_receive(conversation=conversation, text=text)
    return conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")


def make_tenant(slug: str) -> Tenant:
    organization = Organization.objects.create(name=slug.title(), slug=slug)
    kb = knowledge.knowledge_base_create(organization=organization, name="help")
    owner, agent = _user(f"{slug}-owner"), _user(f"{slug}-agent")
    owner_membership = membership_set(organization=organization, user=owner, role=Membership.Role.OWNER)
    agent_membership = membership_set(organization=organization, user=agent, role=Membership.Role.AGENT)
    owner_token, owner_raw = api_token_create(membership=owner_membership, name="owner's")
    _, agent_raw = api_token_create(membership=agent_membership, name="agent's")
    ticket = handed_over(kb, f"My {slug} lamp flickers", visitor=f"{slug}-v1", contact_id=f"{slug}-user-1")
    tickets.ticket_note_add(ticket=ticket, author=agent, text="Checked the order.")
    document = knowledge.document_upload(knowledge_base=kb, filename="guide.md", content=b"# Guide\n\nHello.")
    assert ticket.conversation is not None and ticket.contact is not None
    return Tenant(
        organization=organization,
        kb=kb,
        owner=owner,
        agent=agent,
        owner_api=Api(owner_raw),
        agent_api=Api(agent_raw),
        owner_token=owner_token,
        ticket=ticket,
        conversation=ticket.conversation,
        contact=ticket.contact,
        document=document,
    )


@pytest.fixture
def alpha() -> Tenant:
    return make_tenant("alpha")


@pytest.fixture
def beta() -> Tenant:
    return make_tenant("beta")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code
    return error


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_stops_working_when_revoked(alpha: Tenant) -> None:
    membership = Membership.objects.get(user=alpha.agent)
    token, raw = api_token_create(membership=membership, name="CI")
    assert raw.startswith("rsv_") and len(raw) > 40
    row = ApiToken.objects.get(pk=token.pk)
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert row.prefix == raw[:12]
    stored = [str(getattr(row, f.attname)) for f in ApiToken._meta.fields]
    assert raw not in stored, "the token itself is never stored"

    api = Api(raw)
    me = api.get("/me")
    assert me.status_code == 200
    assert me.json()["role"] == "agent" and me.json()["organization"]["slug"] == "alpha"
    row.refresh_from_db()
    assert row.last_used_at is not None

    # Listed (never the token itself), revoked through the API, refused from then on.
    listed = api.get("/tokens").json()["items"]
    assert {t["prefix"] for t in listed} >= {raw[:12]} and raw not in json.dumps(listed)
    assert api.delete(f"/tokens/{token.pk}").json()["revoked_at"]
    assert_error(api.get("/me"), 401, "unauthorized")


def test_unknown_malformed_and_missing_tokens_answer_401_with_a_bearer_challenge(alpha: Tenant) -> None:
    for raw in ["", "rsv_nope", "not-a-token", "rsv_" + "x" * 500, alpha.owner_api.raw + "x"]:
        response = Api(raw).get("/tickets")
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"].startswith("Bearer")
    response = Client().get(f"{BASE}/tickets", HTTP_AUTHORIZATION=f"Basic {alpha.owner_api.raw}")
    assert_error(response, 401)


def test_a_revoked_token_or_deactivated_member_is_refused(alpha: Tenant) -> None:
    assert alpha.owner_api.get("/me").status_code == 200
    api_token_revoke(token=alpha.owner_token, by=alpha.owner)
    assert_error(alpha.owner_api.get("/me"), 401)
    assert alpha.agent_api.get("/me").status_code == 200
    get_user_model().objects.filter(pk=alpha.agent.pk).update(is_active=False)
    assert_error(alpha.agent_api.get("/me"), 401)


def test_last_used_is_written_at_most_once_a_minute(alpha: Tenant) -> None:
    alpha.owner_api.get("/me")
    alpha.owner_token.refresh_from_db()
    first = alpha.owner_token.last_used_at
    alpha.owner_api.get("/me")
    alpha.owner_token.refresh_from_db()
    assert first is not None and alpha.owner_token.last_used_at == first


def test_agents_cannot_revoke_someone_elses_token_admins_can(alpha: Tenant) -> None:
    assert_error(alpha.agent_api.delete(f"/tokens/{alpha.owner_token.pk}"), 403, "forbidden")
    agent_token = ApiToken.objects.get(membership__user=alpha.agent)
    assert alpha.owner_api.delete(f"/tokens/{agent_token.pk}").status_code == 200
    assert_error(alpha.agent_api.get("/me"), 401)


# --- roles ----------------------------------------------------------------------------------------


def test_agents_work_tickets_and_read_knowledge_but_only_owners_and_admins_change_it(alpha: Tenant) -> None:
    api, kb, doc = alpha.agent_api, alpha.kb, alpha.document
    assert api.get(f"/knowledge-bases/{kb.pk}/documents").status_code == 200
    assert api.get(f"/documents/{doc.pk}").status_code == 200
    assert api.post(f"/tickets/{alpha.ticket.pk}/notes", {"text": "agent note"}).status_code == 201
    for response in [
        api.upload(kb.pk, "new.md", b"# New"),
        api.delete(f"/documents/{doc.pk}"),
        api.post(f"/documents/{doc.pk}/retry"),
        api.post(f"/knowledge-bases/{kb.pk}/reindex"),
    ]:
        assert_error(response, 403, "forbidden")
    assert Document.objects.filter(knowledge_base=kb).count() == 1
    admin = _user("alpha-admin")
    membership = membership_set(organization=alpha.organization, user=admin, role=Membership.Role.ADMIN)
    _, raw = api_token_create(membership=membership, name="admin")
    assert Api(raw).post(f"/knowledge-bases/{kb.pk}/reindex").status_code == 202


# --- tickets --------------------------------------------------------------------------------------


def test_tickets_list_get_and_change_through_the_services(alpha: Tenant) -> None:
    api, ticket = alpha.agent_api, alpha.ticket
    listed = api.get("/tickets").json()
    assert [t["id"] for t in listed["items"]] == [ticket.pk] and listed["next_cursor"] is None
    got = api.get(f"/tickets/{ticket.pk}").json()
    assert got["subject"] == "My alpha lamp flickers" and got["status"] == "new"
    assert got["contact"]["external_id"] == "alpha-user-1" and got["conversation"] == alpha.conversation.pk

    changed = api.patch(
        f"/tickets/{ticket.pk}",
        {"status": "pending", "priority": "high", "assignee": alpha.owner.pk, "tags": ["Billing", "lamp"]},
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["status"] == "pending" and body["priority"] == "high"
    assert body["assignee"]["username"] == "alpha-owner" and body["tags"] == ["billing", "lamp"]
    fields = set(ticket.changes.values_list("field", flat=True))
    assert {"status", "priority", "assignee", "tags"} <= fields, "audited like the dashboard's changes"
    unassigned = api.patch(f"/tickets/{ticket.pk}", {"assignee": None}).json()
    assert unassigned["assignee"] is None and unassigned["priority"] == "high"


def test_a_ticket_change_is_all_or_nothing_and_refusals_say_why(alpha: Tenant, beta: Tenant) -> None:
    api, ticket = alpha.agent_api, alpha.ticket
    error = assert_error(api.patch(f"/tickets/{ticket.pk}", {"priority": "urgent", "tags": ["bad!tag"]}), 422)
    assert "usable tag" in error["message"]
    assert api.get(f"/tickets/{ticket.pk}").json()["priority"] == "normal"
    error = assert_error(api.patch(f"/tickets/{ticket.pk}", {"assignee": beta.owner.pk}), 422, "refused")
    assert "not a member" in error["message"]
    assert_error(api.patch(f"/tickets/{ticket.pk}", {}), 422)
    assert_error(api.patch(f"/tickets/{ticket.pk}", {"status": None}), 422)
    assert_error(api.patch(f"/tickets/{ticket.pk}", {"status": "done"}), 422, "invalid")


def test_replies_reach_the_conversation_and_notes_stay_internal(alpha: Tenant) -> None:
    api, ticket = alpha.agent_api, alpha.ticket
    reply = api.post(f"/tickets/{ticket.pk}/replies", {"text": "Try a new bulb."})
    assert reply.status_code == 201, reply.content
    assert reply.json()["role"] == "agent" and reply.json()["author"]["username"] == "alpha-agent"
    after = api.get(f"/tickets/{ticket.pk}").json()
    assert after["status"] == "open" and after["first_response_at"] and after["assignee"]["username"] == "alpha-agent"
    texts = [m["text"] for m in api.get(f"/tickets/{ticket.pk}/messages").json()["items"]]
    assert texts[0] == "My alpha lamp flickers" and texts[-1] == "Try a new bulb."
    assert texts == [m["text"] for m in api.get(f"/conversations/{alpha.conversation.pk}/messages").json()["items"]]

    note = api.post(f"/tickets/{ticket.pk}/notes", {"text": "Customer is on the gold plan."})
    assert note.status_code == 201
    notes = api.get(f"/tickets/{ticket.pk}/notes").json()["items"]
    assert [n["text"] for n in notes] == ["Checked the order.", "Customer is on the gold plan."]
    assert "gold plan" not in json.dumps(api.get(f"/tickets/{ticket.pk}/messages").json())
    assert_error(api.post(f"/tickets/{ticket.pk}/replies", {"text": "   "}), 422, "refused")
    assert_error(api.post(f"/tickets/{ticket.pk}/notes", {"text": " \n "}), 422, "refused")


def test_a_ticket_without_a_conversation_cannot_be_replied_to(alpha: Tenant) -> None:
    bare = Ticket.objects.create(organization=alpha.organization, subject="By email", channel="email")
    assert_error(alpha.agent_api.post(f"/tickets/{bare.pk}/replies", {"text": "Hi"}), 409, "conflict")
    assert alpha.agent_api.get(f"/tickets/{bare.pk}/messages").json() == {"items": [], "next_cursor": None}


def test_ticket_filters(alpha: Tenant) -> None:
    api, first = alpha.agent_api, alpha.ticket
    kb = alpha.kb
    second = handed_over(kb, "Refund for my order please", visitor="alpha-v2")
    third = handed_over(kb, "Where is the manual", visitor="alpha-v3")
    tickets.ticket_set_tags(ticket=second, actor=alpha.agent, names=["refund"])
    tickets.ticket_assign(ticket=second, actor=alpha.agent, assignee=alpha.agent)
    tickets.ticket_set_status(ticket=third, actor=alpha.agent, status="resolved")
    SLAPolicy.objects.create(
        organization=alpha.organization, priority="urgent", first_response_minutes=0, resolution_minutes=0
    )
    tickets.ticket_set_priority(ticket=first, actor=alpha.agent, priority="urgent")
    Ticket.objects.filter(pk=third.pk).update(channel="email")

    def ids(**params: Any) -> set[int]:
        response = api.get("/tickets", params)
        assert response.status_code == 200, response.content
        return {t["id"] for t in response.json()["items"]}

    assert ids() == {first.pk, second.pk, third.pk}
    assert ids(status="todo") == {first.pk, second.pk}
    assert ids(status="resolved") == {third.pk}
    assert ids(priority="urgent") == {first.pk}
    assert ids(assignee="me") == {second.pk}
    assert ids(assignee=str(alpha.agent.pk)) == {second.pk}
    assert ids(assignee="unassigned") == {first.pk, third.pk}
    assert ids(tag="refund") == {second.pk}
    assert ids(channel="email") == {third.pk}
    assert ids(sla="breached") == {first.pk}
    assert ids(q="refund") == {second.pk}
    assert ids(q="manual", status="all") == {third.pk}
    assert ids(q="nothing-like-this") == set()
    oldest = [t["id"] for t in api.get("/tickets", {"sort": "oldest"}).json()["items"]]
    newest = [t["id"] for t in api.get("/tickets", {"sort": "updated"}).json()["items"]]
    assert oldest == newest[::-1]


# --- pagination -----------------------------------------------------------------------------------


def _walk(api: Api, path: str, **params: Any) -> tuple[list[int], int]:
    ids: list[int] = []
    pages = 0
    cursor = None
    while True:
        response = api.get(path, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return ids, pages


def test_cursor_pagination_walks_every_item_once_in_order(alpha: Tenant) -> None:
    for i in range(11):
        handed_over(alpha.kb, f"Question number {i}", visitor=f"alpha-p{i}")
    expected = list(
        Ticket.objects.filter(organization=alpha.organization)
        .order_by("-updated_at", "-pk")
        .values_list("pk", flat=True)
    )
    ids, pages = _walk(alpha.agent_api, "/tickets", limit=5)
    assert ids == expected and len(set(ids)) == 12 and pages == 3
    ids, _ = _walk(alpha.agent_api, "/tickets", limit=5, sort="oldest")
    assert ids == expected[::-1]

    for i in range(24):
        conversations.message_receive(conversation=alpha.conversation, text=f"follow-up {i}")
    ids, pages = _walk(alpha.agent_api, f"/conversations/{alpha.conversation.pk}/messages", limit=10)
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == alpha.conversation.messages.count() and pages == 3

    # A page that appears while walking: nothing repeats, nothing already walked is lost.
    first = alpha.agent_api.get("/contacts", {"limit": 1}).json()
    Contact.objects.create(organization=alpha.organization, name="Newcomer")
    rest, _ = (
        _walk(alpha.agent_api, "/contacts", limit=1, cursor=first["next_cursor"]) if first["next_cursor"] else ([], 0)
    )
    assert first["items"][0]["id"] not in rest


def test_cursors_are_opaque_and_bound_to_their_list(alpha: Tenant) -> None:
    for i in range(3):
        handed_over(alpha.kb, f"Question {i}", visitor=f"alpha-c{i}")
    cursor = alpha.agent_api.get("/tickets", {"limit": 1}).json()["next_cursor"]
    assert cursor
    assert_error(alpha.agent_api.get("/tickets", {"cursor": cursor[:-2] + "xx"}), 400, "bad_request")
    assert_error(alpha.agent_api.get("/contacts", {"cursor": cursor}), 400)
    assert_error(alpha.agent_api.get("/tickets", {"cursor": cursor, "sort": "oldest"}), 400)
    assert_error(alpha.agent_api.get("/tickets", {"cursor": "garbage"}), 400)
    for limit in ["0", "101", "-1", "many"]:
        assert_error(alpha.agent_api.get("/tickets", {"limit": limit}), 422, "invalid")
    assert len(alpha.agent_api.get("/tickets", {"limit": 100}).json()["items"]) == 4


# --- contacts, conversations, knowledge ------------------------------------------------------------


def test_contacts_list_search_and_get_with_html_as_plain_text(alpha: Tenant) -> None:
    Contact.objects.filter(pk=alpha.contact.pk).update(name="<script>alert(1)</script> Ann", email="ann@example.com")
    api = alpha.agent_api
    listed = api.get("/contacts").json()["items"]
    assert [c["id"] for c in listed] == [alpha.contact.pk]
    response = api.get(f"/contacts/{alpha.contact.pk}")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"] == "<script>alert(1)</script> Ann"
    assert [c["id"] for c in api.get("/contacts", {"q": "ann@"}).json()["items"]] == [alpha.contact.pk]
    assert api.get("/contacts", {"q": "nobody"}).json()["items"] == []


def test_conversations_list_filter_and_get_with_messages(alpha: Tenant) -> None:
    api = alpha.agent_api
    bot = conversations.conversation_start(organization=alpha.organization, knowledge_bases=[alpha.kb], visitor_id="v9")
    listed = {c["id"]: c for c in api.get("/conversations").json()["items"]}
    assert set(listed) == {alpha.conversation.pk, bot.pk}
    assert listed[alpha.conversation.pk]["ticket"] == alpha.ticket.pk and listed[bot.pk]["ticket"] is None
    waiting = api.get("/conversations", {"status": "waiting_human"}).json()["items"]
    assert [c["id"] for c in waiting] == [alpha.conversation.pk]
    assert_error(api.get("/conversations", {"status": "sleeping"}), 422)
    detail = api.get(f"/conversations/{alpha.conversation.pk}").json()
    assert detail["status"] == "waiting_human" and detail["more_messages"] is False
    assert [m["role"] for m in detail["messages"]] == ["customer", "system"]


def test_knowledge_bases_and_documents_upload_status_delete_retry_reindex(alpha: Tenant) -> None:
    api, kb = alpha.owner_api, alpha.kb
    assert [k["name"] for k in api.get("/knowledge-bases").json()["items"]] == ["help"]
    assert api.get(f"/knowledge-bases/{kb.pk}").json()["id"] == kb.pk

    uploaded = api.upload(kb.pk, "faq.md", b"# FAQ\n\nQ: Why?\nA: Because.", url="https://example.com/faq")
    assert uploaded.status_code == 202, uploaded.content
    doc = uploaded.json()
    assert doc["source"] == "faq.md" and doc["status"] == "queued" and doc["knowledge_base"] == kb.pk
    assert api.get(f"/documents/{doc['id']}").json()["bytes"] == 26
    sources = [d["source"] for d in api.get(f"/knowledge-bases/{kb.pk}/documents").json()["items"]]
    assert sources == ["faq.md", "guide.md"]
    Document.objects.filter(pk=alpha.document.pk).update(status="failed", error="bad")
    failed = api.get(f"/knowledge-bases/{kb.pk}/documents", {"status": "failed"}).json()["items"]
    assert [d["id"] for d in failed] == [alpha.document.pk]

    retried = api.post(f"/documents/{alpha.document.pk}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    reindexed = api.post(f"/knowledge-bases/{kb.pk}/reindex")
    assert reindexed.status_code == 202 and reindexed.json() == {"queued": 2}
    deleted = api.delete(f"/documents/{doc['id']}")
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    assert_error(api.post(f"/documents/{doc['id']}/retry"), 409, "conflict")


def test_oversized_uploads_and_bodies_are_refused_with_a_clear_413(alpha: Tenant, settings: Any) -> None:
    settings.INGEST_MAX_BYTES = 1000
    api, kb = alpha.owner_api, alpha.kb
    error = assert_error(api.upload(kb.pk, "big.pdf", b"x" * 5000), 413, "too_large")
    assert "4.9 KB" in error["message"] and "upload limit of 1000 bytes" in error["message"]
    error = assert_error(api.upload(kb.pk, "huge.pdf", b"x" * 200_000), 413, "too_large")
    assert "upload limit" in error["message"]
    assert not Document.objects.filter(source__in=["big.pdf", "huge.pdf"]).exists()
    error = assert_error(api.post(f"/tickets/{alpha.ticket.pk}/notes", {"text": "x" * 300_000}), 413, "too_large")
    assert "bodies up to 256 KB" in error["message"]
    assert_error(api.upload(kb.pk, "empty.md", b""), 422)


# --- tenant isolation ----------------------------------------------------------------------------

# Every endpoint, and how the sweep calls it. A new endpoint fails the sweep until it is added here.
SWEEP: dict[tuple[str, str], Any] = {
    ("GET", "/me"): None,
    ("GET", "/tokens"): "tokens",
    ("DELETE", "/tokens/{token_id}"): None,
    ("GET", "/tickets"): "ticket",
    ("GET", "/tickets/{ticket_id}"): None,
    ("PATCH", "/tickets/{ticket_id}"): {"status": "pending", "tags": ["x"]},
    ("GET", "/tickets/{ticket_id}/messages"): None,
    ("POST", "/tickets/{ticket_id}/replies"): {"text": "Hello"},
    ("GET", "/tickets/{ticket_id}/notes"): None,
    ("POST", "/tickets/{ticket_id}/notes"): {"text": "A note"},
    ("GET", "/contacts"): "contact",
    ("GET", "/contacts/{contact_id}"): None,
    ("GET", "/conversations"): "conversation",
    ("GET", "/conversations/{conversation_id}"): None,
    ("GET", "/conversations/{conversation_id}/messages"): None,
    ("GET", "/knowledge-bases"): "kb",
    ("GET", "/knowledge-bases/{knowledge_base_id}"): None,
    ("POST", "/knowledge-bases/{knowledge_base_id}/reindex"): None,
    ("GET", "/knowledge-bases/{knowledge_base_id}/documents"): None,
    ("POST", "/knowledge-bases/{knowledge_base_id}/documents"): "upload",
    ("GET", "/documents/{document_id}"): None,
    ("DELETE", "/documents/{document_id}"): None,
    ("POST", "/documents/{document_id}/retry"): None,
    ("PATCH", "/documents/{document_id}"): {"tags": ["tv"]},
    ("POST", "/knowledge-bases/{knowledge_base_id}/search"): {"query": "hello"},
}


def _routes() -> set[tuple[str, str]]:
    """Every operation of the v1 API, from its OpenAPI schema, checked against its URL patterns
    (an endpoint hidden from the schema would still be counted)."""
    from resolvo.api.v1.api import api

    schema = api.get_openapi_schema()
    routes = {
        (method.upper(), path.removeprefix(BASE))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    patterns = {str(p.pattern) for p in api.urls[0]} - {"", "openapi.json", "docs"}
    paths = {re.sub(r"\{(\w+)\}", r"<\1>", p.removeprefix(BASE + "/")) for p in schema["paths"]}
    assert patterns == paths, f"URL patterns not in the schema: {patterns - paths}"
    return routes


def _call(api: Api, method: str, path: str, how: Any) -> Any:
    if how == "upload":
        return api.client.post(BASE + path, {"file": SimpleUploadedFile("x.md", b"# x")}, **api._headers())
    if method == "GET":
        return api.get(path)
    if method == "DELETE":
        return api.delete(path)
    if method == "PATCH":
        return api.patch(path, how)
    return api.post(path, how if isinstance(how, dict) else None)


def test_every_endpoint_answers_404_for_another_organizations_ids(alpha: Tenant, beta: Tenant) -> None:
    routes = _routes()
    assert routes == set(SWEEP), (
        f"endpoints missing from the sweep: {sorted(routes - set(SWEEP))}; gone: {sorted(set(SWEEP) - routes)}"
    )
    foreign = {
        "ticket_id": beta.ticket.pk,
        "contact_id": beta.contact.pk,
        "conversation_id": beta.conversation.pk,
        "knowledge_base_id": beta.kb.pk,
        "document_id": beta.document.pk,
        "token_id": beta.owner_token.pk,
    }
    own_ids = {
        "ticket": alpha.ticket.pk,
        "contact": alpha.contact.pk,
        "conversation": alpha.conversation.pk,
        "kb": alpha.kb.pk,
        "tokens": alpha.owner_token.pk,
    }
    foreign_ids = {
        "ticket": beta.ticket.pk,
        "contact": beta.contact.pk,
        "conversation": beta.conversation.pk,
        "kb": beta.kb.pk,
        "tokens": beta.owner_token.pk,
    }
    swept = 0
    for (method, template), how in sorted(SWEEP.items()):
        params = re.findall(r"\{(\w+)\}", template)
        if not params:
            response = _call(alpha.owner_api, method, template, how)
            assert response.status_code == 200, (method, template, response.content)
            if how:  # a list: the caller's own item is there, the other organization's is not
                ids = {item["id"] for item in response.json()["items"]}
                assert own_ids[how] in ids and foreign_ids[how] not in ids, (method, template)
            continue
        unknown = set(params) - set(foreign)
        assert not unknown, f"the sweep has no foreign id for {unknown} in {template}"
        path = template.format(**{p: foreign[p] for p in params})
        # Control: the owner's own organization sees the object (the route works) ...
        if method == "GET":
            assert _call(beta.owner_api, method, path, how).status_code == 200, (method, path)
        # ... and the other organization's owner (every role check passes) gets 404.
        error = assert_error(_call(alpha.owner_api, method, path, how), 404, "not_found")
        assert str(foreign[params[0]]) in error["message"]
        swept += 1
    assert swept == sum(1 for _, t in SWEEP if "{" in t)
    # Nothing of beta's changed.
    beta.ticket.refresh_from_db()
    assert beta.ticket.status == "new" and not beta.ticket.tags.exists()
    assert beta.ticket.notes.count() == 1 and beta.conversation.messages.count() == 2
    assert Document.objects.get(pk=beta.document.pk).status == "queued"
    assert ApiToken.objects.get(pk=beta.owner_token.pk).revoked_at is None
    assert not Document.objects.filter(knowledge_base=beta.kb, source="x.md").exists()


# --- refusals: 4xx with one body, never 500 ---------------------------------------------------------

NOT_JSON = [
    b"",
    b"{",
    b"not json",
    b"\xff\xfe\x00garbage",
    b"[" * 5000 + b"]" * 5000,
    b'{"text": "\\ud800"}',
    b"null",
    b"[]",
    b'"text"',
    b"1e999999",
    b'{"text": NaN}',
]
WRONG = [
    {},
    {"text": None},
    {"text": 12},
    {"text": ["a"]},
    {"text": {"nested": True}},
    {"text": "x" * 10_001},
    {"text": "null\x00byte"},
    {"text": True},
    {"status": "done"},
    {"status": 3},
    {"priority": ""},
    {"assignee": "me"},
    {"assignee": -1},
    {"assignee": 2**70},
    {"assignee": 1.5},
    {"tags": "billing"},
    {"tags": [1, 2]},
    {"tags": ["x" * 51]},
    {"tags": [f"t{i}" for i in range(21)]},
    {"tags": ["ok", None]},
    {"tags": ["\x00"]},
    {"tags": ["bad!"]},
    {"status": "open", "unknown": "field", "tags": [{"a": 1}]},
]


def test_schema_invalid_requests_get_a_4xx_error_body_never_a_500(alpha: Tenant) -> None:
    api, t = alpha.agent_api, alpha.ticket.pk
    endpoints = [("PATCH", f"/tickets/{t}"), ("POST", f"/tickets/{t}/replies"), ("POST", f"/tickets/{t}/notes")]
    checked = 0
    for method, path in endpoints:
        send = api.patch if method == "PATCH" else api.post
        for raw in NOT_JSON:
            response = send(path, raw.decode("latin-1") if method == "PATCH" else raw, content_type="application/json")
            assert 400 <= response.status_code < 500, (method, path, raw[:40], response.content[:300])
            assert_error(response, response.status_code)
            checked += 1
        for body in WRONG:
            response = send(path, body)
            assert 200 <= response.status_code < 500, (method, path, body, response.content[:300])
            if response.status_code >= 400:
                assert_error(response, response.status_code)
            checked += 1
        for content_type in ["text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]:
            response = send(path, '{"text": "hi"}', content_type=content_type)
            assert response.status_code < 500, (method, path, content_type, response.content[:300])
            checked += 1
    # Query strings and path ids of every shape.
    bad_gets = [
        "/tickets?status=bogus",
        "/tickets?priority=extreme",
        "/tickets?assignee=../../etc",
        "/tickets?assignee=99999999999999999999999",
        "/tickets?channel=pigeon",
        "/tickets?sla=soon",
        "/tickets?sort=random",
        "/tickets?q=%00",
        "/tickets?tag=%00",
        "/tickets?q=" + "x" * 201,
        "/tickets?limit=1e3",
        "/tickets?cursor=" + "A" * 2001,
        "/contacts?q=%00",
        "/conversations?channel=fax",
        f"/knowledge-bases/{alpha.kb.pk}/documents?status=lost",
        "/tickets/abc",
        "/tickets/0",
        "/tickets/-1",
        "/tickets/99999999999999999999999",
        "/tickets/1.5",
        "/tickets/%00",
        "/documents/9223372036854775808",
        "/conversations/1e5/messages",
        "/nowhere",
        "/tickets/1/unknown",
    ]
    for path in bad_gets:
        response = api.get(path)
        assert 400 <= response.status_code < 500, (path, response.content[:300])
        assert_error(response, response.status_code)
        checked += 1
    # Search syntax the full-text parser might choke on is still just a search.
    for q in ['"unclosed', "a & | ! b", "-", "(((", "'; drop table", "ünïcödé 中文"]:
        assert api.get("/tickets", {"q": q}).status_code == 200, q
    # Uploads: no file, a JSON body, a bad url.
    owner, kb = alpha.owner_api, alpha.kb.pk
    for response in [
        owner.client.post(f"{BASE}/knowledge-bases/{kb}/documents", {}, **owner._headers()),
        owner.post(f"/knowledge-bases/{kb}/documents", {"file": "x"}),
        owner.upload(kb, "ok.md", b"x", url="javascript:alert(1)"),
        owner.upload(kb, "ok.md", b"x", url="http://x/" + "a" * 1000),
    ]:
        assert 400 <= response.status_code < 500, response.content[:300]
        assert_error(response, response.status_code)
        checked += 1
    # A file name with control characters is cleaned (by Django's parser) or refused, never stored as is.
    response = owner.upload(kb, "a\x01b.md", b"x")
    assert response.status_code in (202, 422) and "\x01" not in response.content.decode()
    # Methods an endpoint does not have are refused too.
    assert api.client.put(f"{BASE}/tickets/{t}", "{}", **api._headers()).status_code == 405
    assert checked > 100
    # Nothing invalid got in (the plain-text bodies above were valid JSON, and were taken).
    notes = list(alpha.ticket.notes.values_list("text", flat=True))
    assert set(notes) <= {"Checked the order.", "hi"}
    assert not alpha.ticket.tags.exists() and api.get(f"/tickets/{t}").json()["priority"] == "normal"


def test_the_rate_limit_answers_429_with_retry_after(alpha: Tenant, settings: Any) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "token": "3/minute"}
    for _ in range(3):
        assert alpha.agent_api.get("/me").status_code == 200
    response = alpha.agent_api.get("/me")
    error = assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60 and "try again" in error["message"]
    # Per member: the owner's tokens have their own allowance.
    assert alpha.owner_api.get("/me").status_code == 200


# --- the schema and the docs ------------------------------------------------------------------------


def test_the_openapi_schema_and_docs_are_served() -> None:
    client = Client()
    schema = client.get(f"{BASE}/openapi.json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["info"]["title"] == "Resolvo REST API" and body["info"]["version"] == "1"
    assert f"{BASE}/tickets" in body["paths"]
    assert any(s.get("scheme") == "bearer" for s in body["components"]["securitySchemes"].values())
    docs = client.get(f"{BASE}/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content
    assert_error(client.get(f"{BASE}/tickets"), 401)
    assert_error(client.get(f"{BASE}/no/such/thing"), 404, "not_found")
    assert_error(Client(enforce_csrf_checks=True).post(f"{BASE}/no/such/thing", {}), 404, "not_found")


def test_the_api_token_command_prints_a_working_token_once_and_revokes_it(alpha: Tenant) -> None:
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command(
        "api_token", "create", "--org", "alpha", "--user", "alpha-agent", "--name", "cli", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    assert raw.startswith("rsv_") and "not shown again" in err.getvalue()
    assert Api(raw).get("/me").json()["user"]["username"] == "alpha-agent"
    call_command("api_token", "revoke", "--prefix", raw[:12], stdout=StringIO())
    assert_error(Api(raw).get("/me"), 401)


def test_lists_take_a_fixed_number_of_queries_whatever_the_page_size(alpha: Tenant) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(8):
        ticket = handed_over(alpha.kb, f"Question {i}", visitor=f"alpha-q{i}")
        tickets.ticket_set_tags(ticket=ticket, actor=alpha.agent, names=["a", "b"])
        tickets.ticket_assign(ticket=ticket, actor=alpha.agent, assignee=alpha.agent)
    alpha.agent_api.get("/me")  # the token's last_used_at is written now, not inside the counts
    counts = {}
    for path in ["/tickets", "/contacts", "/conversations", f"/knowledge-bases/{alpha.kb.pk}/documents"]:
        for limit in (2, 9):
            with CaptureQueriesContext(connection) as queries:
                assert alpha.agent_api.get(path, {"limit": limit}).status_code == 200
            counts[path, limit] = len(queries)
        assert counts[path, 2] == counts[path, 9], (path, counts)
