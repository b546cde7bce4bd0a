"""The inbox's reads: every filter, the sorts, full-text search (PostgreSQL, the GIN index of
tickets migration 0003) that never crosses organizations, the counts in one query, a page in a
fixed number of queries whatever its size, and one ticket only for its organization's members."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from resolvo.conversations import services as conversations
from resolvo.tickets import selectors, services
from resolvo.tickets.models import SLAPolicy, Ticket
from resolvo.tickets.selectors import InboxFilter, TicketNotFound
from tests.tickets.test_services import handoff, member

pytestmark = pytest.mark.django_db
S = Ticket.Status


class Inbox:
    """One organization's tickets in every state an agent filters by, and another organization
    whose tickets share their words."""

    def __init__(self, make_kb: Any) -> None:
        self.kb = make_kb("acme", "help")
        self.org = self.kb.organization
        self.me = member(self.org, "ada")
        self.grace = member(self.org, "grace")
        other_kb = make_kb("other", "help")
        self.stranger = member(other_kb.organization, "mallory")
        SLAPolicy.objects.create(
            organization=self.org, priority="normal", first_response_minutes=60, resolution_minutes=600
        )

        self.new = handoff(self.kb, "My hub blinks amber", visitor="v-new")
        self.mine = handoff(self.kb, "Invoice shows the wrong amount", visitor="v-mine")
        services.ticket_reply(ticket=self.mine, agent=self.me, text="Looking into your invoice now.")
        services.ticket_set_priority(ticket=self.mine, actor=self.me, priority="urgent")
        services.ticket_set_tags(ticket=self.mine, actor=self.me, names=["billing", "vip"])
        self.pending = self._api_handoff("Thermostat will not pair", visitor="v-pending")
        services.ticket_reply(ticket=self.pending, agent=self.grace, text="Which app version do you use?")
        services.ticket_set_status(ticket=self.pending, actor=self.grace, status=S.PENDING)
        services.ticket_set_priority(ticket=self.pending, actor=self.grace, priority="high")
        services.ticket_set_tags(ticket=self.pending, actor=self.grace, names=["billing"])
        self.resolved = handoff(self.kb, "Where is my parcel", visitor="v-resolved")
        services.ticket_set_status(ticket=self.resolved, actor=self.me, status=S.RESOLVED)
        self.closed = handoff(self.kb, "Cancel my subscription", visitor="v-closed")
        services.ticket_set_status(ticket=self.closed, actor=self.me, status=S.CLOSED)
        self.breached = handoff(self.kb, "Nobody answered me yesterday", visitor="v-breached")
        services.ticket_set_priority(ticket=self.breached, actor=self.me, priority="low")
        # Handed over two hours ago under a one-hour first-response target.
        Ticket.objects.filter(pk=self.breached.pk).update(
            first_response_due=timezone.now() - timedelta(hours=1), resolution_due=timezone.now() + timedelta(hours=8)
        )
        # The other organization's tickets say the same things.
        self.theirs = handoff(other_kb, "My hub blinks amber and my thermostat will not pair", visitor="v-new")

        # Distinct activity times, oldest first in this order, so the sorts are deterministic.
        order = [self.closed, self.resolved, self.breached, self.pending, self.new, self.mine]
        now = timezone.now()
        for n, ticket in enumerate(order):
            Ticket.objects.filter(pk=ticket.pk).update(
                updated_at=now - timedelta(minutes=10 * (len(order) - n)),
                created_at=now - timedelta(hours=len(order) - n if ticket != self.new else 24),
            )

    def _api_handoff(self, text: str, *, visitor: str) -> Ticket:
        conversation = conversations.conversation_start(
            organization=self.org, knowledge_bases=[self.kb], visitor_id=visitor, channel="api"
        )
        conversations.message_receive(conversation=conversation, text=text)
        return conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")

    def ids(self, **filters: Any) -> list[int]:
        found = selectors.tickets_for_inbox(organization=self.org, user=self.me, filters=InboxFilter(**filters))
        return [t.pk for t in found]

    def names(self, **filters: Any) -> list[str]:
        by_id = {t.pk: name for name, t in vars(self).items() if isinstance(t, Ticket)}
        return [by_id[pk] for pk in self.ids(**filters)]


@pytest.fixture
def inbox(make_kb: Any) -> Inbox:
    return Inbox(make_kb)


# --- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("todo", {"new", "mine", "pending", "breached"}),
        ("open", {"mine"}),
        ("new", {"new", "breached"}),
        ("pending", {"pending"}),
        ("resolved", {"resolved"}),
        ("closed", {"closed"}),
        ("all", {"new", "mine", "pending", "resolved", "closed", "breached"}),
    ],
)
def test_status_groups(inbox: Inbox, status: str, expected: set[str]) -> None:
    # "todo" is the group of everything still to do (new, open, pending), as the inbox's tab;
    # "open" is the one status.
    assert set(inbox.names(status=status)) == expected


def test_priority_channel_and_tag_filters(inbox: Inbox) -> None:
    assert inbox.names(priority="urgent") == ["mine"]
    assert inbox.names(priority="high") == ["pending"]
    assert set(inbox.names(priority="normal")) == {"new"}  # resolved and closed are not open
    assert set(inbox.names(priority="normal", status="all")) == {"new", "resolved", "closed"}
    assert inbox.names(channel="api") == ["pending"]
    assert set(inbox.names(channel="widget")) == {"new", "mine", "breached"}
    assert inbox.names(tag="billing") == ["mine", "pending"]  # one row per ticket, however many tags
    assert inbox.names(tag="vip") == ["mine"]
    assert inbox.names(tag="nonexistent") == []


def test_assignee_filters(inbox: Inbox) -> None:
    assert inbox.names(assignee="me") == ["mine"]
    assert set(inbox.names(assignee="unassigned")) == {"new", "breached"}
    assert inbox.names(assignee=str(inbox.grace.pk)) == ["pending"]
    assert set(inbox.names(assignee="all")) == {"new", "mine", "pending", "breached"}


def test_sla_breached_lists_open_tickets_past_a_due_time(inbox: Inbox) -> None:
    assert inbox.names(sla="breached") == ["breached"]
    # Answered: the first-response target no longer counts; the resolution target still does.
    services.ticket_reply(ticket=inbox.breached, agent=inbox.me, text="Sorry for the wait.")
    assert inbox.names(sla="breached") == []
    Ticket.objects.filter(pk=inbox.breached.pk).update(resolution_due=timezone.now() - timedelta(minutes=1))
    assert inbox.names(sla="breached") == ["breached"]
    # Resolved tickets are never breached.
    services.ticket_set_status(ticket=inbox.breached, actor=inbox.me, status=S.RESOLVED)
    assert inbox.names(sla="breached", status="all") == []


def test_filters_combine(inbox: Inbox) -> None:
    assert inbox.names(tag="billing", priority="high", assignee=str(inbox.grace.pk), channel="api") == ["pending"]
    assert inbox.names(tag="billing", assignee="me", status="pending") == []


def test_filters_from_request_parameters_fall_back_on_unknown_values() -> None:
    params = {"status": "bogus", "priority": "p1", "assignee": "someone", "channel": "fax", "sort": "random"}
    assert InboxFilter.from_query(params) == InboxFilter()
    parsed = InboxFilter.from_query(
        {"status": "all", "assignee": "42", "sla": "breached", "q": "  hub \n amber ", "tag": "x" * 80}
    )
    assert (parsed.status, parsed.assignee, parsed.sla, parsed.q, parsed.tag) == (
        "all",
        "42",
        "breached",
        "hub amber",
        "x" * 50,
    )


# --- search --------------------------------------------------------------------------------------


def test_search_finds_words_from_later_messages_and_stays_in_the_organization(inbox: Inbox) -> None:
    assert inbox.names(q="amber") == ["new"]
    assert inbox.names(q="AMBER blinks") == ["new"]  # every word, any case
    assert inbox.names(q="thermostat") == ["pending"]
    # A later message of the customer, and an agent's reply, are searchable too.
    conversations.message_receive(conversation=inbox.mine.conversation, text="The zebrafish logo charge is odd")
    assert inbox.names(q="zebrafish") == ["mine"]
    assert inbox.names(q="invoice now") == ["mine"]
    # websearch syntax: a quoted phrase, an excluded word.
    assert inbox.names(q='"hub blinks"') == ["new"]
    assert inbox.names(q='"blinks hub"') == []
    assert set(inbox.names(q="my -amber", status="all")) == {"resolved", "closed"}
    # The other organization's ticket says "amber" and "thermostat": it never appears, whatever the filter.
    for q in ("amber", "thermostat", "hub blinks amber thermostat"):
        assert inbox.theirs.pk not in inbox.ids(q=q, status="all")
    assert inbox.names(q="nothing-like-this") == []
    assert inbox.names(q="amber", status="resolved") == []


def test_search_filters_by_the_indexed_expression(inbox: Inbox) -> None:
    """The search's expression is, as PostgreSQL reads it, the one migration 0003 indexed, so the
    planner can use the GIN index (whether it does at 100,000 tickets: bench/dashboard.py)."""
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only")
    found = selectors.tickets_for_inbox(organization=inbox.org, user=inbox.me, filters=InboxFilter(q="amber"))
    with CaptureQueriesContext(connection) as queries:
        found.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('ticket_search_fts'::regclass)")
        definition = cursor.fetchone()[0]
        cursor.execute("EXPLAIN " + queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    indexed = definition.split("USING gin (", 1)[1].rsplit(")", 1)[0]
    assert indexed == "to_tsvector('simple'::regconfig, COALESCE(search_text, ''::text))"
    assert f"{indexed} @@ " in plan, plan


# --- sorts ---------------------------------------------------------------------------------------


def test_sorts(inbox: Inbox) -> None:
    assert inbox.names(status="all") == ["mine", "new", "pending", "breached", "resolved", "closed"]
    assert inbox.names(status="all", sort="oldest") == ["closed", "resolved", "breached", "pending", "new", "mine"]
    assert inbox.names(status="all", sort="created") == ["mine", "pending", "breached", "resolved", "closed", "new"]
    assert inbox.names(sort="priority") == ["mine", "pending", "new", "breached"]  # urgent, high, normal, low
    # Due: the earliest first-response due time first (the breached one); no due time (no policy
    # for urgent and high) last, most recently active first.
    assert inbox.names(sort="due") == ["breached", "new", "mine", "pending"]


# --- counts and query counts ---------------------------------------------------------------------


def test_inbox_counts_in_one_query(inbox: Inbox, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        counts = selectors.inbox_counts(organization=inbox.org, user=inbox.me)
    assert counts == {"todo": 4, "mine": 1, "unassigned": 2, "breached": 1}
    assert selectors.inbox_counts(organization=inbox.org, user=inbox.grace)["mine"] == 1


def render_page(organization: Any, user: Any, filters: InboxFilter) -> tuple[int, int]:
    """What the inbox page does: count, one page of 25, and each row's contact, assignee and tags."""
    with CaptureQueriesContext(connection) as queries:
        page = Paginator(selectors.tickets_for_inbox(organization=organization, user=user, filters=filters), 25).page(1)
        rows = [
            (t.subject, t.contact.display_name if t.contact else "", t.assignee.get_username() if t.assignee else "",
             [tag.name for tag in t.tags.all()], t.status, t.priority, t.first_response_due)
            for t in page
        ]  # fmt: skip
    return len(queries), len(rows)


def many(inbox: Inbox, n: int) -> None:
    """``n`` more open tickets, each with a contact, an assignee and two tags."""
    for i in range(n):
        ticket = handoff(inbox.kb, f"Question number {i}", visitor=f"bulk-{i}")
        services.ticket_assign(ticket=ticket, actor=inbox.me, assignee=inbox.grace if i % 2 else inbox.me)
        services.ticket_set_tags(ticket=ticket, actor=inbox.me, names=[f"t{i % 3}", "bulk"])


PAGE_FILTERS = {
    "default": InboxFilter(),
    "all by priority": InboxFilter(status="all", sort="priority"),
    "tag": InboxFilter(tag="bulk"),
    "mine, due": InboxFilter(assignee="me", sort="due"),
    "search": InboxFilter(q="question"),
}


def test_a_page_takes_the_same_queries_for_5_and_50_tickets(inbox: Inbox) -> None:
    many(inbox, 5)
    small = {name: render_page(inbox.org, inbox.me, f) for name, f in PAGE_FILTERS.items()}
    many(inbox, 45)
    large = {name: render_page(inbox.org, inbox.me, f) for name, f in PAGE_FILTERS.items()}
    for name in PAGE_FILTERS:
        (small_queries, small_rows), (large_queries, large_rows) = small[name], large[name]
        assert small_rows < large_rows <= 25, name
        assert small_queries == large_queries <= 3, name  # count, the page, its tags


# --- one ticket ----------------------------------------------------------------------------------


def test_one_ticket_only_for_members_of_its_organization(inbox: Inbox, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):  # the ticket with its relations, its tags
        found = selectors.ticket_for_member(user=inbox.me, ticket_id=inbox.mine.pk)
        assert found.organization.slug == "acme" and found.contact is not None and found.conversation is not None
        assert sorted(t.name for t in found.tags.all()) == ["billing", "vip"]
    with pytest.raises(TicketNotFound):
        selectors.ticket_for_member(user=inbox.stranger, ticket_id=inbox.mine.pk)
    with pytest.raises(TicketNotFound):
        selectors.ticket_for_member(user=inbox.me, ticket_id=inbox.theirs.pk)
    with pytest.raises(TicketNotFound):
        selectors.ticket_for_member(user=inbox.me, ticket_id=10**9)


def test_a_ticket_page_thread_notes_and_log(inbox: Inbox, django_assert_num_queries: Any) -> None:
    services.ticket_note_add(ticket=inbox.mine, author=inbox.me, text="Refund approved")
    ticket = selectors.ticket_for_member(user=inbox.me, ticket_id=inbox.mine.pk)
    with django_assert_num_queries(3):
        thread = selectors.ticket_thread(ticket=ticket)
        notes = selectors.ticket_notes(ticket=ticket)
        log = selectors.ticket_changes(ticket=ticket)
        shown = [(m.role, m.text, m.author.get_username() if m.author else "") for m in thread]
        shown += [(n.author.get_username(), n.text) for n in notes]  # type: ignore[misc]
        shown += [(c.actor.get_username() if c.actor else "system", c.field) for c in log]  # type: ignore[misc]
    assert [m.role for m in thread] == ["customer", "system", "agent"]
    assert thread[-1].author_id == inbox.me.pk
    assert [n.text for n in notes] == ["Refund approved"]
    assert [c.field for c in log][:2] == ["note", "tags"] and log[-1].field == "created"  # newest first
