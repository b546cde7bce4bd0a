"""The public widget API, ``/api/widget/v1/``: what the chat widget on a customer's site calls.

Thin adapters over the conversations services. Every request is bound to one widget (hence one
organization): boot by its public key, everything after by the signed visitor token; the page's
``Origin`` must be one of the widget's allowed origins on every request (403 otherwise); another
visitor's or organization's conversation answers 404. Rate limits per visitor, IP and
organization answer 429 with ``Retry-After``. Answers stream as server-sent events in the answer
protocol of :mod:`resolvo.answers.events`, preceded by a ``message`` event (the stored customer
message); the conversation's own event log streams with ``id:`` on every event for replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import Field, field_validator

from ingestion.tags import MAX_TAGS, validate_tags
from resolvo import live
from resolvo.answers import sse
from resolvo.api import ratelimit
from resolvo.api.streaming import frames_from_thread, sse_response
from resolvo.api.visitors import Visitor, identity_check, new_visitor_id, visitor_from_token, visitor_token
from resolvo.conversations import services as conversations
from resolvo.conversations.models import Conversation, Message, MessageFeedback
from resolvo.conversations.selectors import (
    ConversationNotFound,
    conversation_for_visitor,
    conversation_messages,
    events_after,
)
from resolvo.organizations.models import Widget
from resolvo.organizations.selectors import WidgetRefused, widget_for_key, widget_origin_check

router = Router(tags=["widget"])


# --- schemas ----------------------------------------------------------------------------------


class BootIn(Schema):
    key: str
    visitor_token: str | None = None
    user_id: str | None = None
    user_hash: str | None = None
    # The alternative identity proof: a short-lived HS256 JWT whose ``sub`` is the user id.
    user_jwt: str | None = None
    language: str | None = None
    tags: list[str] | None = Field(
        None, max_length=MAX_TAGS, description="The page's knowledge scope; checked here, used by /conversations."
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else validate_tags(value)


class ConversationIn(Schema):
    tags: list[str] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="Answer only from documents with any of these tags (the product the page is about), "
        "for the whole conversation. Lowercase slugs like 'galaxy-s10'; none: the whole knowledge base.",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return validate_tags(value)


class CitationOut(Schema):
    n: int
    source: str
    title: str
    section: str
    url: str
    inferred: bool


class MessageOut(Schema):
    id: int
    role: str
    text: str
    citations: list[CitationOut]
    offers_handoff: bool
    created_at: str


class ConversationOut(Schema):
    id: int
    status: str
    tags: list[str]
    last_event_id: int
    messages: list[MessageOut]


class WidgetOut(Schema):
    greeting: str
    colour: str
    position: str
    launcher_text: str


class OrganizationOut(Schema):
    name: str


class BootOut(Schema):
    visitor_token: str
    organization: OrganizationOut
    widget: WidgetOut
    conversation: ConversationOut | None


class MessageIn(Schema):
    text: str


class HandoffOut(Schema):
    ticket: int
    status: str


class FeedbackIn(Schema):
    rating: Literal["up", "down"]


class CsatIn(Schema):
    score: int
    comment: str = ""


# --- the gate -----------------------------------------------------------------------------------


def _ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _limit(request: HttpRequest, visitor: Visitor) -> None:
    try:
        ratelimit.check(visitor=visitor.visitor_id, ip=_ip(request), organization=str(visitor.widget.organization_id))
    except ratelimit.RateLimited as exc:
        raise RateLimitedError(exc.retry_after, str(exc)) from None


class RateLimitedError(HttpError):
    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


class VisitorAuth(HttpBearer):
    """The bearer visitor token, valid only from one of its widget's allowed origins."""

    def authenticate(self, request: HttpRequest, token: str) -> Visitor | None:
        try:
            visitor = visitor_from_token(token)
            widget_origin_check(widget=visitor.widget, origin=request.headers.get("Origin"))
        except WidgetRefused as exc:
            raise HttpError(403, str(exc)) from None
        return visitor


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    visitor: Visitor = request.auth  # type: ignore[attr-defined]
    try:
        return conversation_for_visitor(
            organization=visitor.widget.organization, visitor_id=visitor.visitor_id, conversation_id=conversation_id
        )
    except ConversationNotFound as exc:
        raise HttpError(404, str(exc)) from None


def _conversation_out(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "tags": list(conversation.tags or []),
        "last_event_id": conversation.last_event_seq,
        "messages": [conversations.message_as_dict(m) for m in conversation_messages(conversation=conversation)],
    }


# --- endpoints ----------------------------------------------------------------------------------


@router.post("/boot", response=BootOut, auth=None, summary="Start or resume a visitor's session")
def boot(request: HttpRequest, body: BootIn) -> dict[str, Any]:
    try:
        widget = widget_for_key(key=body.key)
        widget_origin_check(widget=widget, origin=request.headers.get("Origin"))
        user_id = identity_check(widget, user_id=body.user_id, user_hash=body.user_hash, user_jwt=body.user_jwt)
    except WidgetRefused as exc:
        raise HttpError(403, str(exc)) from None
    visitor = None
    if body.visitor_token:
        try:
            visitor = visitor_from_token(body.visitor_token, widget=widget)
        except WidgetRefused:
            visitor = None  # a stale token (rotated key, another widget): start afresh
    if visitor is None or (user_id and visitor.user_id != user_id):
        visitor = Visitor(widget=widget, visitor_id=new_visitor_id(), user_id=user_id)
    _limit(request, visitor)
    latest = (
        Conversation.objects.filter(organization=widget.organization, visitor_id=visitor.visitor_id)
        .order_by("-updated_at")
        .first()
    )
    return {
        "visitor_token": visitor_token(visitor),
        "organization": {"name": widget.organization.name},
        "widget": {
            "greeting": widget.greeting,
            "colour": widget.colour,
            "position": widget.position,
            "launcher_text": widget.launcher_text,
        },
        "conversation": _conversation_out(latest) if latest else None,
    }


@router.post("/conversations", response=ConversationOut, auth=VisitorAuth(), summary="Start a conversation")
def conversation_create(request: HttpRequest, body: ConversationIn | None = None) -> dict[str, Any]:
    visitor: Visitor = request.auth  # type: ignore[attr-defined]
    _limit(request, visitor)
    widget = visitor.widget
    knowledge_bases = list(widget.knowledge_bases.all()) or list(widget.organization.knowledge_bases.all())
    if not knowledge_bases:
        raise HttpError(409, "This widget has no knowledge base to answer from yet.")
    conversation = conversations.conversation_start(
        organization=widget.organization,
        knowledge_bases=knowledge_bases,
        visitor_id=visitor.visitor_id,
        contact_id=visitor.user_id,
        tags=body.tags if body is not None else (),
    )
    return _conversation_out(conversation)


@router.get("/conversations/{conversation_id}", response=ConversationOut, auth=VisitorAuth())
def conversation_get(request: HttpRequest, conversation_id: int) -> dict[str, Any]:
    return _conversation_out(_conversation(request, conversation_id))


@router.post(
    "/conversations/{conversation_id}/messages",
    auth=VisitorAuth(),
    summary="Send a customer message; the answer streams back as server-sent events",
    description=(
        "Send an `Idempotency-Key` header (a new one per message, the same one when retrying): a "
        "retried send never duplicates. `text/event-stream`: `message` (the stored message), then "
        "`sources`, `token`*, `citations`, `done` (or `error`); when a person owns the "
        "conversation, `message` then `status` only."
    ),
)
def message_send(request: HttpRequest, conversation_id: int, body: MessageIn) -> StreamingHttpResponse:
    visitor: Visitor = request.auth  # type: ignore[attr-defined]
    conversation = _conversation(request, conversation_id)
    _limit(request, visitor)
    try:
        message, created = conversations.message_receive(
            conversation=conversation, text=body.text, idempotency_key=request.headers.get("Idempotency-Key")
        )
    except conversations.MessageRejected as exc:
        raise HttpError(422, str(exc)) from None
    conversation.refresh_from_db()

    def produce() -> Iterator[str]:
        yield sse.frame("message", conversations.message_as_dict(message))
        if not created:  # a retry of a send already answered (or answering): replay, don't re-answer
            reply = Message.objects.filter(conversation=conversation, pk__gt=message.pk).order_by("pk").first()
            yield sse.frame("status", {"status": conversation.status, "replayed": True, "reply": _maybe(reply)})
            return
        if conversation.status != Conversation.Status.BOT:
            yield sse.frame("status", {"status": conversation.status})
            return
        for event in conversations.conversation_answer_stream(conversation=conversation, message=message):
            yield sse.encode(event)

    return sse_response(frames_from_thread(produce))


@router.get(
    "/conversations/{conversation_id}/events",
    auth=VisitorAuth(),
    summary="The conversation's events as server-sent events, replayed after a given id",
    description=(
        "Every event has an `id:`; reconnect with `?after=<last id>` (or `Last-Event-ID`) to get what "
        "was missed. Events: `message`, `status`, `typing`. The stream ends after about 25 s; reconnect."
    ),
)
async def conversation_events(request: HttpRequest, conversation_id: int, after: int = 0) -> StreamingHttpResponse:
    conversation = await sync_to_async(_conversation)(request, conversation_id)
    last = request.headers.get("Last-Event-ID")
    seq = int(last) if last and last.isdigit() else after

    async def stream() -> AsyncIterator[str]:
        nonlocal seq
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.API_EVENTS_STREAM_SECONDS
        yield "retry: 2000\n\n"
        # Listen before reading, so nothing committed in between goes unnoticed; a note wakes the
        # stream, the database says what happened; a quiet spell re-reads it anyway.
        async with live.subscribe(f"conversation:{conversation.pk}") as notes:
            reread = True
            while True:
                if reread:
                    for row in await _events_after(conversation, seq):
                        seq = row.seq
                        yield sse.frame(row.type, row.data, id=row.seq)
                left = deadline - loop.time()
                if left <= 0:
                    return
                note = await notes.get(timeout=min(left, settings.API_EVENTS_KEEPALIVE_SECONDS))
                if note is None:
                    yield ": keep-alive\n\n"
                    reread = True
                elif "typing" in note:
                    reread = False
                    if note["typing"] == "agent":  # the visitor's own typing is not echoed back
                        typing = {"role": "agent", "name": note.get("name", ""), "on": note.get("on", True)}
                        yield sse.frame("typing", typing)
                else:
                    reread = int(note.get("seq", seq + 1)) > seq

    return sse_response(stream())


@router.post("/conversations/{conversation_id}/handoff", response=HandoffOut, auth=VisitorAuth())
def handoff(request: HttpRequest, conversation_id: int) -> dict[str, Any]:
    conversation = _conversation(request, conversation_id)
    last = Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).order_by("-pk").first()
    trigger = "customer_accepted" if last is not None and last.offers_handoff else "customer_asked"
    try:
        ticket = conversations.conversation_handoff(conversation=conversation, trigger=trigger)
    except conversations.InvalidTransition as exc:
        raise HttpError(409, str(exc)) from None
    conversation.refresh_from_db()
    return {"ticket": ticket.pk, "status": conversation.status}


@router.post("/messages/{message_id}/feedback", response={204: None}, auth=VisitorAuth())
def feedback(request: HttpRequest, message_id: int, body: FeedbackIn) -> tuple[int, None]:
    visitor: Visitor = request.auth  # type: ignore[attr-defined]
    message = Message.objects.filter(
        pk=message_id,
        role=Message.Role.ASSISTANT,
        conversation__organization=visitor.widget.organization,
        conversation__visitor_id=visitor.visitor_id,
    ).first()
    if message is None:
        raise HttpError(404, f"No answer {message_id}.")
    with transaction.atomic():
        MessageFeedback.objects.update_or_create(message=message, defaults={"rating": body.rating})
    return 204, None


@router.post(
    "/conversations/{conversation_id}/typing",
    response={204: None},
    auth=VisitorAuth(),
    summary="The customer is typing (shown to the agent); send at most every few seconds",
)
def typing(request: HttpRequest, conversation_id: int) -> tuple[int, None]:
    visitor: Visitor = request.auth  # type: ignore[attr-defined]
    conversation = _conversation(request, conversation_id)
    try:
        ratelimit.check(typing=visitor.visitor_id)
    except ratelimit.RateLimited as exc:
        raise RateLimitedError(exc.retry_after, str(exc)) from None
    conversations.conversation_typing(conversation=conversation, role="customer")
    return 204, None


@router.post("/conversations/{conversation_id}/csat", response={204: None}, auth=VisitorAuth())
def csat(request: HttpRequest, conversation_id: int, body: CsatIn) -> tuple[int, None]:
    conversation = _conversation(request, conversation_id)
    if not 1 <= body.score <= 5:
        raise HttpError(422, "The score is a number from 1 to 5.")
    conversations.conversation_rate(conversation=conversation, score=body.score, comment=body.comment[:2000])
    return 204, None


@sync_to_async
def _events_after(conversation: Conversation, seq: int) -> list[Any]:
    return list(events_after(conversation=conversation, seq=seq))


# --- framing ------------------------------------------------------------------------------------


def _maybe(message: Message | None) -> dict[str, Any] | None:
    return conversations.message_as_dict(message) if message is not None else None


def rate_limited_response(request: HttpRequest, exc: RateLimitedError, api: Any) -> HttpResponse:
    response: HttpResponse = api.create_response(request, {"detail": exc.message}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


__all__ = ["RateLimitedError", "Widget", "rate_limited_response", "router"]
