"""What the REST API takes and gives, and how a model row becomes a response item.

Strings that reach the database refuse NUL characters (PostgreSQL cannot store them) and have a
maximum length, so a schema-valid request never fails further in; names and texts are returned
exactly as stored (JSON, so HTML in a name is just text to the client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints

from resolvo.conversations.models import Conversation, Message
from resolvo.knowledge.models import Document, KnowledgeBase
from resolvo.knowledge.selectors import document_as_dict
from resolvo.organizations.models import ApiToken, Membership
from resolvo.tickets.models import Contact, Priority, Ticket, TicketNote
from resolvo.tickets.selectors import STATUS_FILTERS
from resolvo.tickets.services import NOTE_MAX_CHARS

ID_MAX = 2**63 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
ShortText = Annotated[str, StringConstraints(max_length=50), NoNul]
"""A tag, or a tag filter."""
SearchText = Annotated[str, StringConstraints(max_length=200), NoNul]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS), NoNul]
"""A reply or a note."""


# --- in ---------------------------------------------------------------------------------------


def _status_filter(value: str) -> str:
    if value not in STATUS_FILTERS:
        raise ValueError(f"must be one of {', '.join(STATUS_FILTERS)}")
    return value


class TicketFilters(Schema):
    status: Annotated[str, AfterValidator(_status_filter)] = Field(
        "all", description="open (new, open and pending), new, pending, resolved, closed or all."
    )
    priority: Priority | None = None
    assignee: str = Field(
        "all", pattern=r"^(all|me|unassigned|[0-9]{1,18})$", description="all, me, unassigned or a user id."
    )
    tag: ShortText = ""
    channel: Ticket.Channel | None = None
    sla: Literal["breached"] | None = Field(None, description="breached: a due time passed.")
    q: SearchText = Field("", description="Full-text search over subject and messages.")
    sort: Literal["updated", "oldest", "created"] = "updated"


class TicketPatch(Schema):
    """Send only what changes; ``assignee: null`` unassigns."""

    status: Ticket.Status | None = None
    priority: Priority | None = None
    assignee: int | None = Field(None, ge=1, le=ID_MAX, description="A member's user id, or null.")
    tags: list[ShortText] | None = Field(None, max_length=20, description="The ticket's tags become these.")


class ReplyIn(Schema):
    text: LongText


class NoteIn(Schema):
    text: LongText


class ContactFilters(Schema):
    q: SearchText = Field("", description="A substring of the name, email or external id.")


class ConversationFilters(Schema):
    status: Conversation.Status | None = None
    channel: Conversation.Channel | None = None


def _tags(value: list[str] | None) -> list[str] | None:
    from ingestion.tags import validate_tags

    return None if value is None else validate_tags(value)  # TagError is a ValueError: a 422


Tags = Annotated[list[str], Field(max_length=20), AfterValidator(_tags)]
"""Document tags: lowercase slugs like ``galaxy-s10`` (see docs/ingestion.md)."""


class DocumentPatch(Schema):
    tags: Tags = Field(description="The document's tags become these; its chunks are retagged in place.")


class SearchIn(Schema):
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
    limit: int = Field(5, ge=1, le=50)
    tags: Tags = Field(
        default_factory=list,
        description="Only chunks of documents with any of these tags (a filter inside the vector store); "
        "none: the whole knowledge base.",
    )


class DocumentFilters(Schema):
    status: Document.Status | None = None


# --- out --------------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    username: str
    name: str


class ContactRef(Schema):
    id: int
    name: str
    email: str
    external_id: str


class ContactOut(ContactRef):
    visitor_id: str
    created_at: datetime
    updated_at: datetime


class TicketOut(Schema):
    id: int
    subject: str
    summary: str
    status: str
    priority: str
    channel: str
    assignee: UserOut | None
    contact: ContactRef | None
    conversation: int | None
    tags: list[str]
    handoff_trigger: str
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MessageOut(Schema):
    id: int
    role: str
    text: str
    author: UserOut | None
    citations: list[dict[str, Any]]
    created_at: datetime


class NoteOut(Schema):
    id: int
    text: str
    author: UserOut | None
    created_at: datetime


class ConversationOut(Schema):
    id: int
    status: str
    channel: str
    language: str
    visitor_id: str
    contact_id: str
    ticket: int | None
    csat_score: int | None
    created_at: datetime
    updated_at: datetime


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut] = Field(description="The first messages, oldest first (all: /messages).")
    more_messages: bool


class KnowledgeBaseOut(Schema):
    id: int
    name: str
    description: str
    url_tag_rules: dict[str, list[str]] = Field(description="Tags for web pages by URL path prefix.")
    created_at: datetime


class DocumentOut(Schema):
    id: int
    knowledge_base: int
    source: str
    kind: str
    parent: int | None
    title: str
    tags: list[str] = Field(description="Tags given by people (upload, API, folder name).")
    source_tags: list[str] = Field(description="Tags the source gives itself: front matter and URL rules.")
    status: str
    error: str
    chunks: int
    chunks_done: int
    version: int
    mime_type: str
    bytes: int
    timings_ms: dict[str, int | None]
    updated_at: datetime


class ReindexOut(Schema):
    queued: int


class SearchHitOut(Schema):
    rank: int
    document: int
    source: str
    title: str
    section: str
    url: str
    text: str
    score: float


class SearchOut(Schema):
    results: list[SearchHitOut]


class OrganizationOut(Schema):
    id: int
    slug: str
    name: str


class MeOut(Schema):
    user: UserOut
    organization: OrganizationOut
    role: str
    can_manage_knowledge: bool


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ErrorDetail(Schema):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(Schema):
    error: ErrorDetail


ERRORS: dict[int | tuple[int, ...], Any] = {(400, 401, 403, 404, 409, 413, 422, 429): ErrorOut}
"""Every endpoint's refusals, for the OpenAPI schema."""


# --- rows to items ----------------------------------------------------------------------------


def user_out(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name()}


def contact_ref(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"id": contact.pk, "name": contact.name, "email": contact.email, "external_id": contact.external_id}


def contact_out(contact: Contact) -> dict[str, Any]:
    return {
        **(contact_ref(contact) or {}),
        "visitor_id": contact.visitor_id,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


def ticket_out(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "subject": ticket.subject,
        "summary": ticket.summary,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "assignee": user_out(ticket.assignee),
        "contact": contact_ref(ticket.contact),
        "conversation": ticket.conversation_id,
        "tags": sorted(tag.name for tag in ticket.tags.all()),
        "handoff_trigger": ticket.handoff_trigger,
        "first_response_due": ticket.first_response_due,
        "resolution_due": ticket.resolution_due,
        "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def message_out(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "author": user_out(message.author),
        "citations": list(message.citations or []),
        "created_at": message.created_at,
    }


def note_out(note: TicketNote) -> dict[str, Any]:
    return {"id": note.pk, "text": note.text, "author": user_out(note.author), "created_at": note.created_at}


def conversation_out(conversation: Conversation) -> dict[str, Any]:
    try:
        ticket: int | None = conversation.ticket.pk
    except Ticket.DoesNotExist:
        ticket = None
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "channel": conversation.channel,
        "language": conversation.language,
        "visitor_id": conversation.visitor_id,
        "contact_id": conversation.contact_id,
        "ticket": ticket,
        "csat_score": conversation.csat_score,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def knowledge_base_out(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "id": kb.pk,
        "name": kb.name,
        "description": kb.description,
        "url_tag_rules": kb.url_tag_rules or {},
        "created_at": kb.created_at,
    }


def document_out(document: Document) -> dict[str, Any]:
    return {**document_as_dict(document), "knowledge_base": document.knowledge_base_id}


def token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def me_out(membership: Membership) -> dict[str, Any]:
    org = membership.organization
    return {
        "user": user_out(membership.user),
        "organization": {"id": org.pk, "slug": org.slug, "name": org.name},
        "role": membership.role,
        "can_manage_knowledge": membership.can_manage_knowledge,
    }
