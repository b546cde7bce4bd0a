"""Tickets, their messages and internal notes: read by any member, worked through
:mod:`resolvo.tickets.services` (so the audit log, SLA times, webhooks and live dashboards follow
an API change exactly as they follow one made in the dashboard)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router

from resolvo.api.v1.auth import member, organization
from resolvo.api.v1.errors import ApiError
from resolvo.api.v1.pagination import Page, PageParams, paginate
from resolvo.api.v1.params import Id
from resolvo.api.v1.schemas import (
    ERRORS,
    MessageOut,
    NoteIn,
    NoteOut,
    ReplyIn,
    TicketFilters,
    TicketOut,
    TicketPatch,
    message_out,
    note_out,
    ticket_out,
)
from resolvo.conversations.models import Message
from resolvo.conversations.selectors import conversation_messages
from resolvo.tickets import services
from resolvo.tickets.models import TicketNote
from resolvo.tickets.selectors import InboxFilter, members_of, ticket_in_organization, tickets_for_inbox

router = Router(tags=["tickets"])

SORT_KEYS = {"updated": ("-updated_at", "-id"), "oldest": ("updated_at", "id"), "created": ("-created_at", "-id")}


@router.get("/tickets", response={200: Page[TicketOut], **ERRORS}, summary="List tickets")
def ticket_list(request: HttpRequest, filters: Query[TicketFilters], page: Query[PageParams]) -> dict[str, Any]:
    """Filters as in the dashboard's inbox; the default status is ``all`` (``todo`` is new, open
    and pending together)."""
    caller = member(request)
    inbox = InboxFilter(
        status=filters.status,
        priority=filters.priority or "",
        assignee=filters.assignee,
        tag=filters.tag,
        channel=filters.channel or "",
        sla=filters.sla or "",
        q=" ".join(filters.q.split()),
    )
    tickets = tickets_for_inbox(organization=caller.organization, user=caller.user, filters=inbox)
    return paginate(
        tickets, listing=f"tickets:{filters.sort}", order=SORT_KEYS[filters.sort], params=page, serialize=ticket_out
    )


@router.get("/tickets/{ticket_id}", response={200: TicketOut, **ERRORS}, summary="Get a ticket")
def ticket_get(request: HttpRequest, ticket_id: Id) -> dict[str, Any]:
    return ticket_out(ticket_in_organization(organization=organization(request), ticket_id=ticket_id))


@router.patch("/tickets/{ticket_id}", response={200: TicketOut, **ERRORS}, summary="Change a ticket")
def ticket_update(request: HttpRequest, ticket_id: Id, body: TicketPatch) -> dict[str, Any]:
    """Status, priority, assignee (a member's user id, or null) and tags: only the fields sent
    change, all or none of them."""
    caller = member(request)
    ticket = ticket_in_organization(organization=caller.organization, ticket_id=ticket_id)
    sent = body.model_fields_set
    if not sent:
        raise ApiError(422, "Send at least one of status, priority, assignee, tags.")
    for field in ("status", "priority", "tags"):
        if field in sent and getattr(body, field) is None:
            raise ApiError(422, f"{field} cannot be null.")
    assignee = None
    if "assignee" in sent and body.assignee is not None:
        membership = members_of(organization=caller.organization).filter(user_id=body.assignee).first()
        if membership is None:
            raise ApiError(422, f"User {body.assignee} is not a member of this organization.", code="refused")
        assignee = membership.user
    with transaction.atomic():
        if body.status is not None:
            services.ticket_set_status(ticket=ticket, actor=caller.user, status=body.status)
        if body.priority is not None:
            services.ticket_set_priority(ticket=ticket, actor=caller.user, priority=body.priority)
        if "assignee" in sent:
            services.ticket_assign(ticket=ticket, actor=caller.user, assignee=assignee)
        if body.tags is not None:
            services.ticket_set_tags(ticket=ticket, actor=caller.user, names=body.tags)
    return ticket_out(ticket_in_organization(organization=caller.organization, ticket_id=ticket_id))


@router.get(
    "/tickets/{ticket_id}/messages",
    response={200: Page[MessageOut], **ERRORS},
    summary="List a ticket's messages (its conversation), oldest first",
)
def ticket_messages(request: HttpRequest, ticket_id: Id, page: Query[PageParams]) -> dict[str, Any]:
    ticket = ticket_in_organization(organization=organization(request), ticket_id=ticket_id)
    messages = (
        conversation_messages(conversation=ticket.conversation)
        if ticket.conversation is not None
        else Message.objects.none()
    )
    return paginate(
        messages.select_related("author"),
        listing=f"messages:{ticket.conversation_id}",
        order=("id",),
        params=page,
        serialize=message_out,
    )


@router.post(
    "/tickets/{ticket_id}/replies",
    response={201: MessageOut, **ERRORS},
    summary="Reply to the customer (reaches the chat live)",
)
def ticket_reply(request: HttpRequest, ticket_id: Id, body: ReplyIn) -> tuple[int, dict[str, Any]]:
    caller = member(request)
    ticket = ticket_in_organization(organization=caller.organization, ticket_id=ticket_id)
    if ticket.conversation is None:
        raise ApiError(409, "This ticket has no conversation to reply in.")
    message = services.ticket_reply(ticket=ticket, agent=caller.user, text=body.text)
    return 201, message_out(message)


@router.get("/tickets/{ticket_id}/notes", response={200: Page[NoteOut], **ERRORS}, summary="List internal notes")
def ticket_notes(request: HttpRequest, ticket_id: Id, page: Query[PageParams]) -> dict[str, Any]:
    ticket = ticket_in_organization(organization=organization(request), ticket_id=ticket_id)
    notes = TicketNote.objects.filter(ticket=ticket).select_related("author")
    return paginate(notes, listing=f"notes:{ticket.pk}", order=("id",), params=page, serialize=note_out)


@router.post("/tickets/{ticket_id}/notes", response={201: NoteOut, **ERRORS}, summary="Add an internal note")
def ticket_note_add(request: HttpRequest, ticket_id: Id, body: NoteIn) -> tuple[int, dict[str, Any]]:
    caller = member(request)
    ticket = ticket_in_organization(organization=caller.organization, ticket_id=ticket_id)
    note = services.ticket_note_add(ticket=ticket, author=caller.user, text=body.text)
    return 201, note_out(note)
