"""How tickets come in and keep up with their conversation, for the conversations services.

The conversations app calls these inside its own transactions (it holds the conversation's row
lock): a handoff opens or re-opens the conversation's ticket (requester contact, SLA due times,
round-robin assignment, the audit log's first line), and every message keeps the ticket's
search text and activity current. Kept apart from ``tickets.services``, which calls the
conversations services for agents' actions, so neither imports the other in a circle.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F, Value
from django.db.models.functions import Concat, Right
from django.utils import timezone

from resolvo import live
from resolvo.organizations.models import Membership, Organization
from resolvo.tickets.models import Contact, SLAPolicy, Ticket, TicketChange
from resolvo.webhooks.services import event_emit

DEFAULT_SUBJECT = "Conversation from the chat widget"
SEARCH_TEXT_MAX_CHARS = 200_000
"""The newest part of a long thread is kept searchable (PostgreSQL's tsvector tops out at 1 MB)."""


def ticket_changed(ticket: Ticket, *, field: str, actor: Any = None, before: str = "", after: str = "") -> None:
    """Audit one change and tell open dashboards (after commit)."""
    TicketChange.objects.create(ticket=ticket, actor=actor, field=field, before=before[:500], after=after[:500])
    note = {"ticket": ticket.pk, "field": field, "by": getattr(actor, "pk", None)}
    live.publish_on_commit(f"organization:{ticket.organization_id}", note)
    live.publish_on_commit(f"ticket:{ticket.pk}", note)


def sla_due_times(ticket: Ticket) -> None:
    """Set the due times from the organization's policy for the ticket's priority (none: no due
    times). Counted from the ticket's creation; the caller saves."""
    policy = SLAPolicy.objects.filter(organization_id=ticket.organization_id, priority=ticket.priority).first()
    start = ticket.created_at or timezone.now()
    ticket.first_response_due = start + timedelta(minutes=policy.first_response_minutes) if policy else None
    ticket.resolution_due = start + timedelta(minutes=policy.resolution_minutes) if policy else None


def contact_for(conversation: Any) -> Contact:
    """The requester: the host site's verified user when there is one, else the visitor."""
    org = conversation.organization_id
    if conversation.contact_id:
        contact, _ = Contact.objects.get_or_create(
            organization_id=org,
            external_id=conversation.contact_id,
            defaults={
                "visitor_id": conversation.visitor_id,
                "name": conversation.contact_name,
                "email": conversation.contact_email,
            },
        )
        return contact
    known = Contact.objects.filter(organization_id=org, external_id="", visitor_id=conversation.visitor_id).first()
    return known or Contact.objects.create(organization_id=org, visitor_id=conversation.visitor_id)


def next_assignee(organization_id: int) -> Any:
    """Round robin: the available member who was assigned least recently (never first). Takes
    the membership rows' locks so two handoffs at once pick different people."""
    if not Organization.objects.filter(pk=organization_id, auto_assign=True).exists():
        return None
    chosen = (
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, available=True, user__is_active=True)
        .select_related("user")
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
        .first()
    )
    if chosen is None:
        return None
    Membership.objects.filter(pk=chosen.pk).update(last_assigned_at=timezone.now())
    return chosen.user


def ticket_for_handoff(*, conversation: Any, subject: str, summary: str, trigger: str, transcript: str) -> Ticket:
    """Open the conversation's ticket, or re-open it when it was handed over before."""
    ticket = Ticket.objects.filter(conversation=conversation).first()
    if ticket is None:
        ticket = Ticket(
            organization_id=conversation.organization_id,
            conversation=conversation,
            channel=conversation.channel if conversation.channel in Ticket.Channel.values else Ticket.Channel.API,
            contact=contact_for(conversation),
            subject=subject,
            summary=summary,
            handoff_trigger=trigger,
            search_text=f"{subject}\n{transcript}"[-SEARCH_TEXT_MAX_CHARS:],
        )
        ticket.created_at = timezone.now()
        sla_due_times(ticket)
        ticket.assignee = next_assignee(conversation.organization_id)
        ticket.save()
        ticket_changed(ticket, field="created", after=trigger)
        if ticket.assignee is not None:
            ticket_changed(ticket, field="assignee", after=ticket.assignee.get_username())
        event_emit(organization_id=ticket.organization_id, type="ticket.created", data=ticket_as_event(ticket))
    else:
        before = ticket.status
        Ticket.objects.filter(pk=ticket.pk).update(
            status=Ticket.Status.NEW, summary=summary, handoff_trigger=trigger, resolved_at=None
        )
        ticket.refresh_from_db()
        ticket_changed(ticket, field="status", before=before, after=Ticket.Status.NEW)
        event_emit(organization_id=ticket.organization_id, type="ticket.updated", data=ticket_as_event(ticket))
    event_emit(
        organization_id=ticket.organization_id,
        type="conversation.handed_off",
        data={"conversation": conversation.pk, "ticket": ticket.pk, "trigger": trigger},
    )
    return ticket


def ticket_message_added(*, conversation: Any, role: str, text: str) -> None:
    """A message in a conversation: its ticket's search text and activity follow; a customer
    writing to a pending ticket makes it open again."""
    tickets = Ticket.objects.filter(conversation=conversation)
    changes: dict[str, Any] = {
        "search_text": Right(Concat(F("search_text"), Value("\n" + text)), SEARCH_TEXT_MAX_CHARS),
        "updated_at": timezone.now(),
    }
    if tickets.update(**changes) and role == "customer":
        # A ticket opened before the customer said anything takes its subject from what they say.
        tickets.filter(subject=DEFAULT_SUBJECT).update(subject=text.splitlines()[0][:200] or DEFAULT_SUBJECT)
        for ticket in tickets.filter(status=Ticket.Status.PENDING):
            Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.OPEN)
            ticket_changed(ticket, field="status", before=Ticket.Status.PENDING, after=Ticket.Status.OPEN)


def ticket_as_event(ticket: Ticket) -> dict[str, Any]:
    """A ticket as webhooks and the REST API name it."""
    return {
        "id": ticket.pk,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "subject": ticket.subject,
        "assignee": ticket.assignee_id,
        "conversation": ticket.conversation_id,
        "contact": ticket.contact_id,
        "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
        "updated_at": ticket.updated_at.isoformat() if ticket.updated_at else None,
    }
