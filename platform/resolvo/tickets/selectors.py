"""Reads for tickets: the inbox (filters, search, sort, counts), one ticket for a member, its
thread. Every read starts from an organization the caller is a member of."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from resolvo.conversations.models import Message
from resolvo.organizations.models import Membership, Organization
from resolvo.tickets.models import Contact, Ticket, TicketChange, TicketNote

TODO = "todo"
"""The status filter for everything still to do: new, open and pending ("open" is one status)."""

SORTS = {
    "updated": "-updated_at",
    "oldest": "updated_at",
    "created": "-created_at",
    "priority": "priority",
    "due": "due",
}
STATUS_FILTERS = (TODO, *Ticket.Status.values, "all")
ASSIGNEE_FILTERS = ("all", "me", "unassigned")


class TicketNotFound(LookupError):
    """No such ticket for this member (the same answer for another organization's ids)."""


@dataclass(frozen=True)
class InboxFilter:
    status: str = TODO
    priority: str = ""
    assignee: str = "all"
    """``all``, ``me``, ``unassigned`` or a member's user id."""
    tag: str = ""
    channel: str = ""
    sla: str = ""
    """``breached``: a due time passed without the response or resolution."""
    q: str = ""
    sort: str = "updated"

    @classmethod
    def from_query(cls, params: Any) -> InboxFilter:
        """From request GET parameters; unknown values fall back to the defaults."""
        f = cls()
        status = params.get("status", f.status)
        priority = params.get("priority", "")
        assignee = params.get("assignee", "all")
        channel = params.get("channel", "")
        sort = params.get("sort", f.sort)
        return replace(
            f,
            status=status if status in STATUS_FILTERS else f.status,
            priority=priority if priority in Ticket.Priority.values else "",
            assignee=assignee if assignee in ASSIGNEE_FILTERS or assignee.isdigit() else "all",
            tag=params.get("tag", "")[:50],
            channel=channel if channel in Ticket.Channel.values else "",
            sla="breached" if params.get("sla") == "breached" else "",
            q=" ".join(params.get("q", "").split())[:200],
            sort=sort if sort in SORTS else f.sort,
        )


def organizations_of(*, user: Any) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("organization").order_by("organization__name"))


def breached_q(now: Any = None) -> Q:
    now = now or timezone.now()
    return Q(status__in=Ticket.OPEN_STATUSES) & (
        Q(first_response_at__isnull=True, first_response_due__lt=now)
        | Q(resolved_at__isnull=True, resolution_due__lt=now)
    )


def _search(tickets: QuerySet[Ticket], q: str) -> QuerySet[Ticket]:
    """Full-text search over subject and messages: PostgreSQL's (the GIN index of migration
    tickets 0003, words as typed, ``websearch`` syntax); elsewhere (the embedded SQLite) the same
    syntax as substrings: every word, a "quoted phrase" as written, -word excluded."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        return tickets.alias(_fts=SearchVector("search_text", config="simple")).filter(
            _fts=SearchQuery(q, config="simple", search_type="websearch")
        )
    for phrase, word in re.findall(r'"([^"]*)"|(\S+)', q):
        term = phrase.strip() or word.strip('"')
        if not term:
            continue
        if not phrase and term.startswith("-") and len(term) > 1:
            tickets = tickets.exclude(search_text__icontains=term[1:])
        else:
            tickets = tickets.filter(search_text__icontains=term)
    return tickets


def tickets_for_inbox(*, organization: Organization, user: Any, filters: InboxFilter) -> QuerySet[Ticket]:
    """The organization's tickets matching ``filters``, sorted, with what a row shows loaded in a
    fixed number of queries whatever the page size."""
    tickets = Ticket.objects.filter(organization=organization)
    if filters.status == TODO:
        tickets = tickets.filter(status__in=Ticket.OPEN_STATUSES)
    elif filters.status != "all":
        tickets = tickets.filter(status=filters.status)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.assignee == "me":
        tickets = tickets.filter(assignee=user)
    elif filters.assignee == "unassigned":
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.assignee.isdigit():
        tickets = tickets.filter(assignee_id=int(filters.assignee))
    if filters.tag:
        tickets = tickets.filter(tags__name=filters.tag)
    if filters.channel:
        tickets = tickets.filter(channel=filters.channel)
    if filters.sla == "breached":
        tickets = tickets.filter(breached_q())
    if filters.q:
        tickets = _search(tickets, filters.q)
    if filters.sort == "priority":
        rank = Case(
            *(When(priority=p, then=Value(i)) for i, p in enumerate(reversed(Ticket.Priority.values))),
            output_field=IntegerField(),
        )
        tickets = tickets.annotate(_rank=rank).order_by("_rank", "-updated_at")
    elif filters.sort == "due":
        tickets = tickets.order_by(
            F("first_response_due").asc(nulls_last=True), F("resolution_due").asc(nulls_last=True), "-updated_at"
        )
    else:
        tickets = tickets.order_by(SORTS[filters.sort], "-pk")
    # search_text (the whole thread, up to 200,000 characters) is never shown in a row.
    return tickets.defer("search_text").select_related("contact", "assignee").prefetch_related("tags")


def inbox_counts(*, organization: Organization, user: Any) -> dict[str, int]:
    """How many tickets each of the inbox's to-do views holds, in one query over the open tickets
    only (the organization's index on status; resolved and closed ones are most of the table and
    their views show no count)."""
    return Ticket.objects.filter(organization=organization, status__in=Ticket.OPEN_STATUSES).aggregate(
        todo=Count("pk"),
        mine=Count("pk", filter=Q(assignee=user)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        breached=Count("pk", filter=breached_q()),
    )


def ticket_for_member(*, user: Any, ticket_id: int) -> Ticket:
    """Ticket ``ticket_id`` if ``user`` is a member of its organization; TicketNotFound otherwise."""
    found = (
        Ticket.objects.filter(pk=ticket_id, organization__memberships__user=user)
        .select_related("organization", "conversation", "contact", "assignee")
        .prefetch_related("tags")
        .first()
    )
    if found is None:
        raise TicketNotFound(f"No ticket {ticket_id}.")
    return found


def ticket_thread(*, ticket: Ticket, latest: int | None = None) -> list[Message]:
    """The conversation's messages, oldest first, with their answer traces and authors; only the
    ``latest`` ones when given (a long thread opens at its end)."""
    if ticket.conversation_id is None:
        return []
    messages = Message.objects.filter(conversation_id=ticket.conversation_id).select_related("trace", "author")
    if latest is None:
        return list(messages.order_by("pk"))
    return list(reversed(messages.order_by("-pk")[:latest]))


def ticket_notes(*, ticket: Ticket) -> list[TicketNote]:
    return list(TicketNote.objects.filter(ticket=ticket).select_related("author").order_by("pk"))


def ticket_changes(*, ticket: Ticket, limit: int = 50) -> list[TicketChange]:
    return list(TicketChange.objects.filter(ticket=ticket).select_related("actor").order_by("-pk")[:limit])


def members_of(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("user__username")


# --- one organization's tickets and contacts, by id (the REST API: the token's organization) -----


class ContactNotFound(LookupError):
    """No such contact in this organization (the same answer for another organization's ids)."""


def ticket_in_organization(*, organization: Organization, ticket_id: int) -> Ticket:
    """Ticket ``ticket_id`` of ``organization``; TicketNotFound otherwise."""
    found = (
        Ticket.objects.filter(pk=ticket_id, organization=organization)
        .select_related("organization", "conversation", "contact", "assignee")
        .prefetch_related("tags")
        .first()
    )
    if found is None:
        raise TicketNotFound(f"No ticket {ticket_id}.")
    return found


def contacts_in_organization(*, organization: Organization, q: str = "") -> QuerySet[Contact]:
    """``organization``'s contacts; ``q`` matches name, email or external id (a substring)."""
    contacts = Contact.objects.filter(organization=organization)
    if q:
        contacts = contacts.filter(Q(name__icontains=q) | Q(email__icontains=q) | Q(external_id__icontains=q))
    return contacts


def contact_in_organization(*, organization: Organization, contact_id: int) -> Contact:
    found = Contact.objects.filter(pk=contact_id, organization=organization).first()
    if found is None:
        raise ContactNotFound(f"No contact {contact_id}.")
    return found
