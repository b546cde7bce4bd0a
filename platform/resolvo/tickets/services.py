"""Writes agents make on tickets: reply, notes, status, priority, assignee, tags, canned
responses and AI drafts. Every change is audited (``TicketChange``) and told to open dashboards.

The caller is an organization member (``tickets.selectors.ticket_for_member`` found the ticket
through the member's organization); the services check the objects they are given belong to
the ticket's organization (an assignee, a tag, a canned response), never trust ids blindly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from resolvo.answers.events import Event
from resolvo.conversations import services as conversations
from resolvo.conversations.models import Conversation, Message
from resolvo.organizations.models import Membership
from resolvo.tickets import intake
from resolvo.tickets.models import CannedResponse, Draft, Tag, Ticket, TicketNote
from resolvo.webhooks.services import event_emit

Status = Ticket.Status
NOTE_MAX_CHARS = 10_000
REPLY_MAX_CHARS = 10_000
TAG_PATTERN = re.compile(r"^[\w][\w .:/+-]{0,49}$")


class TicketRefused(ValueError):
    """The change cannot be made; the message says why, for the agent."""


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _updated(ticket: Ticket) -> None:
    event_emit(organization_id=ticket.organization_id, type="ticket.updated", data=intake.ticket_as_event(ticket))


def _member(ticket: Ticket, user: Any) -> Membership:
    membership = Membership.objects.filter(organization_id=ticket.organization_id, user=user).first()
    if membership is None:
        raise TicketRefused(f"{user} is not a member of this organization.")
    return membership


# --- replies and notes ---------------------------------------------------------------------------


@transaction.atomic
def ticket_reply(*, ticket: Ticket, agent: Any, text: str, draft: Draft | None = None) -> Message:
    """Send ``text`` to the customer (it reaches the widget live). The first reply sets the
    first response time; a reply from a draft records whether the agent changed it."""
    _member(ticket, agent)
    if draft is not None and draft.ticket_id != ticket.pk:
        raise TicketRefused("That draft belongs to another ticket.")
    if len(text or "") > REPLY_MAX_CHARS:
        raise TicketRefused(f"The reply is {len(text):,} characters long; keep it under {REPLY_MAX_CHARS:,}.")
    locked = _locked(ticket)
    if locked.conversation is None:
        raise TicketRefused("This ticket has no conversation to reply in.")
    try:
        message = conversations.conversation_agent_reply(
            conversation=locked.conversation, agent=agent, text=text, citations=_kept_citations(draft, text)
        )
    except conversations.MessageRejected as exc:
        raise TicketRefused(str(exc)) from None
    now = timezone.now()
    changes: dict[str, Any] = {"updated_at": now}
    if locked.first_response_at is None:
        changes["first_response_at"] = now
    if locked.status != Status.OPEN:  # a reply also reopens a resolved or closed ticket, as its conversation
        changes["status"] = Status.OPEN
        changes["resolved_at"] = None
    if locked.assignee_id is None:
        changes["assignee"] = agent
    before = locked.status
    Ticket.objects.filter(pk=locked.pk).update(**changes)
    locked.refresh_from_db()
    if before != locked.status:
        intake.ticket_changed(locked, field="status", actor=agent, before=before, after=locked.status)
    intake.ticket_changed(locked, field="reply", actor=agent, after=message.text[:200])
    if draft is not None:
        draft_decide(draft=draft, agent=agent, outcome=None, final_text=message.text, message=message)
    _updated(locked)
    return message


def _kept_citations(draft: Draft | None, text: str) -> list[dict[str, Any]]:
    """The draft's verified citations whose ``[n]`` markers the sent text still has."""
    if draft is None:
        return []
    return [c for c in draft.citations if isinstance(c, dict) and f"[{c.get('n')}]" in text]


@transaction.atomic
def ticket_note_add(*, ticket: Ticket, author: Any, text: str) -> TicketNote:
    """An internal note, for agents only."""
    _member(ticket, author)
    text = (text or "").strip()
    if not text:
        raise TicketRefused("The note is empty.")
    if len(text) > NOTE_MAX_CHARS:
        raise TicketRefused(f"The note is {len(text):,} characters long; keep it under {NOTE_MAX_CHARS:,}.")
    note = TicketNote.objects.create(ticket=ticket, author=author, text=text)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
    intake.ticket_changed(ticket, field="note", actor=author, after=text[:200])
    return note


# --- status, priority, assignee, tags ------------------------------------------------------------


@transaction.atomic
def ticket_set_status(*, ticket: Ticket, actor: Any, status: str) -> Ticket:
    """Move the ticket, and its conversation with it: resolved resolves the conversation (the
    customer is asked for CSAT), closed closes it, reopening hands it back to a person."""
    _member(ticket, actor)
    if status not in Status.values:
        raise TicketRefused(f"Unknown status {status!r}.")
    locked = _locked(ticket)
    before = locked.status
    if before == status:
        return locked
    conversation = locked.conversation
    try:
        if conversation is not None:
            if status == Status.RESOLVED:
                conversations.conversation_resolve(conversation=conversation)
            elif status == Status.CLOSED:
                conversations.conversation_close(conversation=conversation)
            elif before in (Status.RESOLVED, Status.CLOSED):
                conversations.conversation_take(conversation=conversation)
    except conversations.InvalidTransition as exc:
        raise TicketRefused(str(exc)) from None
    now = timezone.now()
    resolved_at = now if status in (Status.RESOLVED, Status.CLOSED) else None
    Ticket.objects.filter(pk=locked.pk).update(status=status, resolved_at=resolved_at, updated_at=now)
    locked.refresh_from_db()
    intake.ticket_changed(locked, field="status", actor=actor, before=before, after=status)
    _updated(locked)
    return locked


@transaction.atomic
def ticket_set_priority(*, ticket: Ticket, actor: Any, priority: str) -> Ticket:
    """A new priority, and the SLA due times of that priority's policy."""
    _member(ticket, actor)
    if priority not in Ticket.Priority.values:
        raise TicketRefused(f"Unknown priority {priority!r}.")
    locked = _locked(ticket)
    before = locked.priority
    if before == priority:
        return locked
    locked.priority = priority
    intake.sla_due_times(locked)
    locked.save(update_fields=["priority", "first_response_due", "resolution_due", "updated_at"])
    intake.ticket_changed(locked, field="priority", actor=actor, before=before, after=priority)
    _updated(locked)
    return locked


@transaction.atomic
def ticket_assign(*, ticket: Ticket, actor: Any, assignee: Any | None) -> Ticket:
    """Assign to a member of the ticket's organization, or unassign (None)."""
    _member(ticket, actor)
    if (
        assignee is not None
        and not Membership.objects.filter(organization_id=ticket.organization_id, user=assignee).exists()
    ):
        raise TicketRefused("Tickets can only be assigned to members of the organization.")
    locked = _locked(ticket)
    if locked.assignee_id == getattr(assignee, "pk", None):
        return locked
    before = locked.assignee.get_username() if locked.assignee else ""
    locked.assignee = assignee
    locked.save(update_fields=["assignee", "updated_at"])
    intake.ticket_changed(
        locked, field="assignee", actor=actor, before=before, after=assignee.get_username() if assignee else ""
    )
    _updated(locked)
    return locked


@transaction.atomic
def ticket_set_tags(*, ticket: Ticket, actor: Any, names: Sequence[str]) -> list[str]:
    """The ticket's tags become ``names`` (created in the organization as needed)."""
    _member(ticket, actor)
    cleaned: list[str] = []
    for raw in names:
        name = " ".join(str(raw).split()).lower()
        if not name:
            continue
        if not TAG_PATTERN.match(name):
            raise TicketRefused(f"{raw!r} is not a usable tag (letters, digits, spaces and .:/+- up to 50).")
        if name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > 20:
        raise TicketRefused("A ticket takes at most 20 tags.")
    locked = _locked(ticket)
    before = sorted(locked.tags.values_list("name", flat=True))
    tags = [Tag.objects.get_or_create(organization_id=locked.organization_id, name=n)[0] for n in cleaned]
    locked.tags.set(tags)
    after = sorted(cleaned)
    if before != after:
        Ticket.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
        intake.ticket_changed(locked, field="tags", actor=actor, before=", ".join(before), after=", ".join(after))
        _updated(locked)
    return after


# --- canned responses ----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(customer_name|agent_name|organization)\}")


def canned_render(*, canned: CannedResponse, ticket: Ticket, agent: Any) -> str:
    """The canned text with its placeholders filled for this ticket."""
    _member(ticket, agent)
    if canned.organization_id != ticket.organization_id:
        raise TicketRefused("No such canned response.")
    contact = ticket.contact
    values = {
        "customer_name": (contact.name if contact and contact.name else "there"),
        "agent_name": (agent.get_full_name() or agent.get_username()),
        "organization": ticket.organization.name,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], canned.text)


# --- AI drafts -----------------------------------------------------------------------------------


def draft_stream(*, ticket: Ticket, agent: Any) -> Iterator[Event | Draft]:
    """Stream a cited draft reply to the customer's latest message, over the conversation so far
    (the answer protocol's events), then yield the saved ``Draft``. Nothing reaches the customer:
    the agent edits and sends it (``ticket_reply(draft=...)``) or discards it."""
    _member(ticket, agent)
    conversation: Conversation | None = ticket.conversation
    if conversation is None:
        raise TicketRefused("This ticket has no conversation to draft a reply for.")
    last = conversation.messages.filter(role=Message.Role.CUSTOMER).order_by("-pk").first()
    if last is None:
        raise TicketRefused("The customer has not written anything to answer yet.")
    draft = Draft(ticket=ticket, author=agent, question=last.text)
    for event in conversations.conversation_draft_stream(conversation=conversation, message=last):
        if event.type == "citations":
            draft.citations = list(event.as_citations()["citations"])
        elif event.type == "done":
            done = event.as_done()
            draft.text, draft.abstained = done["answer"], done["abstained"]
            draft.trace_id = done.get("trace_id")
        elif event.type == "error":
            draft.abstained = True
            draft.trace_id = event.as_error().get("trace_id")
        yield event
    draft.save()
    intake.ticket_changed(ticket, field="draft", actor=agent, after="abstained" if draft.abstained else "drafted")
    yield draft


@transaction.atomic
def draft_decide(
    *, draft: Draft, agent: Any, outcome: str | None, final_text: str = "", message: Message | None = None
) -> Draft:
    """Record what became of a draft. ``outcome`` None: sent, and whether it was edited is read
    from ``final_text`` against the draft; otherwise ``discarded``."""
    _member(draft.ticket, agent)
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if locked.outcome != Draft.Outcome.PENDING:
        return locked
    if outcome is None:
        same = " ".join(final_text.split()) == " ".join(locked.text.split())
        locked.outcome = Draft.Outcome.SENT if same else Draft.Outcome.EDITED
        locked.final_text = final_text
        locked.message = message
    elif outcome == Draft.Outcome.DISCARDED:
        locked.outcome = Draft.Outcome.DISCARDED
    else:
        raise TicketRefused(f"A draft is sent or discarded, not {outcome!r}.")
    locked.decided_at = timezone.now()
    locked.save(update_fields=["outcome", "final_text", "message", "decided_at"])
    intake.ticket_changed(locked.ticket, field="draft", actor=agent, after=locked.outcome)
    return locked
