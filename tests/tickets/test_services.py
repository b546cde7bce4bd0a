"""Tickets through their services, as an agent relies on them: a handoff opens a ticket with its
requester, SLA due times and a round-robin assignee; replies, notes, status, priority, assignee
and tags are audited and keep the conversation in step; canned responses and drafts. Every
service refuses someone who is not a member of the ticket's organization. Real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from resolvo.conversations import services as conversations
from resolvo.conversations.models import Conversation, Message
from resolvo.conversations.selectors import events_after
from resolvo.organizations.models import Membership, Organization
from resolvo.organizations.services import membership_set
from resolvo.tickets import services
from resolvo.tickets.models import CannedResponse, Contact, Draft, SLAPolicy, Tag, Ticket, TicketChange, TicketNote
from resolvo.tickets.services import TicketRefused
from tests.answers.conftest import answer_settings, lumen_kb

__all__ = ["answer_settings", "lumen_kb"]

pytestmark = pytest.mark.django_db
S = Ticket.Status
C = Conversation.Status


# --- building data through the services ----------------------------------------------------------


def member(organization: Organization, username: str, *, available: bool = True, **user: Any) -> Any:
    """A user who is an agent of ``organization``."""
    person = get_user_model().objects.create_user(username=username, password="x", **user)
    membership_set(organization=organization, user=person, role=Membership.Role.AGENT)
    Membership.objects.filter(organization=organization, user=person).update(available=available)
    return person


def handoff(
    kb: Any,
    text: str = "My hub blinks amber after the update",
    *,
    visitor: str = "v-1",
    contact_id: str = "",
    trigger: str = "customer_asked",
) -> Ticket:
    """A customer writes, then asks for a person: the ticket an agent sees."""
    conversation = conversations.conversation_start(
        organization=kb.organization, knowledge_bases=[kb], visitor_id=visitor, contact_id=contact_id
    )
    conversations.message_receive(conversation=conversation, text=text)
    ticket = conversations.conversation_handoff(conversation=conversation, trigger=trigger)
    ticket.refresh_from_db()
    return ticket


def changes(ticket: Ticket, field: str) -> list[tuple[Any, str, str]]:
    """The audit log's rows for ``field``: (actor id, before, after), oldest first."""
    rows = TicketChange.objects.filter(ticket=ticket, field=field).order_by("pk")
    return [(c.actor_id, c.before, c.after) for c in rows]


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("conversation").get(pk=ticket.pk)


@pytest.fixture
def kb(make_kb: Any) -> Any:
    return make_kb("acme", "help")


@pytest.fixture
def agent(kb: Any) -> Any:
    return member(kb.organization, "ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def outsider(make_kb: Any) -> Any:
    """An agent of another organization."""
    return member(make_kb("other", "help").organization, "mallory")


# --- handoff: requester, SLA, assignment ----------------------------------------------------------


def test_a_handoff_opens_one_ticket_with_the_transcript_and_an_audit_line(kb: Any) -> None:
    ticket = handoff(kb, "My hub blinks amber\nsince Tuesday")
    assert ticket.status == S.NEW and ticket.organization_id == kb.organization_id
    assert ticket.subject == "My hub blinks amber" and ticket.channel == Ticket.Channel.WIDGET
    assert ticket.handoff_trigger == "customer_asked" and "asked to talk to a person" in ticket.summary
    assert "since Tuesday" in ticket.search_text
    assert changes(ticket, "created") == [(None, "", "customer_asked")]
    conversation = ticket.conversation
    assert conversation is not None and conversation.status == C.WAITING_HUMAN
    # Asking again gives the same ticket, and nothing new in its log.
    again = conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")
    assert again.pk == ticket.pk and Ticket.objects.count() == 1
    assert TicketChange.objects.filter(ticket=ticket).count() == 1


def test_the_requester_is_the_verified_user_or_the_same_anonymous_visitor(kb: Any, make_kb: Any) -> None:
    anonymous = [handoff(kb, visitor="v-anon"), handoff(kb, visitor="v-anon"), handoff(kb, visitor="v-other")]
    contacts = [t.contact for t in anonymous]
    assert contacts[0] is not None and contacts[0].pk == contacts[1].pk != contacts[2].pk
    assert contacts[0].external_id == "" and contacts[0].visitor_id == "v-anon"
    # A verified user is one contact whatever browser (visitor id) they write from.
    verified = [
        handoff(kb, visitor="v-laptop", contact_id="user-42"),
        handoff(kb, visitor="v-phone", contact_id="user-42"),
    ]
    assert verified[0].contact_id == verified[1].contact_id
    contact = Contact.objects.get(pk=verified[0].contact_id)
    assert contact.external_id == "user-42" and contact.visitor_id == "v-laptop"
    # The anonymous visitor of the same browser is not merged into the verified contact.
    assert handoff(kb, visitor="v-laptop").contact_id != contact.pk
    # Another organization's visitor with the same id is another contact.
    elsewhere = handoff(make_kb("other", "help"), visitor="v-anon")
    assert elsewhere.contact_id != contacts[0].pk
    assert Contact.objects.get(pk=elsewhere.contact_id).organization_id != kb.organization_id


def test_sla_due_times_come_from_the_policy_and_follow_the_priority(kb: Any, agent: Any) -> None:
    org = kb.organization
    SLAPolicy.objects.create(organization=org, priority="normal", first_response_minutes=60, resolution_minutes=480)
    SLAPolicy.objects.create(organization=org, priority="urgent", first_response_minutes=15, resolution_minutes=120)
    ticket = handoff(kb)
    assert ticket.priority == "normal"
    assert ticket.first_response_due is not None and ticket.resolution_due is not None
    assert abs(ticket.first_response_due - (ticket.created_at + timedelta(minutes=60))) < timedelta(seconds=5)
    assert abs(ticket.resolution_due - (ticket.created_at + timedelta(minutes=480))) < timedelta(seconds=5)

    services.ticket_set_priority(ticket=ticket, actor=agent, priority="urgent")
    urgent = fresh(ticket)
    assert urgent.priority == "urgent"
    assert abs(urgent.first_response_due - (ticket.created_at + timedelta(minutes=15))) < timedelta(seconds=5)
    assert abs(urgent.resolution_due - (ticket.created_at + timedelta(minutes=120))) < timedelta(seconds=5)
    # No policy for low: no due times (not the old ones).
    services.ticket_set_priority(ticket=ticket, actor=agent, priority="low")
    low = fresh(ticket)
    assert low.first_response_due is None and low.resolution_due is None
    assert changes(ticket, "priority") == [(agent.pk, "normal", "urgent"), (agent.pk, "urgent", "low")]
    # The same priority again changes nothing; an unknown one is refused.
    services.ticket_set_priority(ticket=ticket, actor=agent, priority="low")
    assert len(changes(ticket, "priority")) == 2
    with pytest.raises(TicketRefused, match="Unknown priority"):
        services.ticket_set_priority(ticket=ticket, actor=agent, priority="whenever")


def test_round_robin_gives_the_least_recently_assigned_available_member(kb: Any) -> None:
    org = kb.organization
    assert handoff(kb, visitor="v-0").assignee is None  # auto-assign is off by default
    Organization.objects.filter(pk=org.pk).update(auto_assign=True)
    earlier, recently, never = member(org, "earlier"), member(org, "recently"), member(org, "never")
    away = member(org, "away", available=False)
    gone = member(org, "gone")
    gone.is_active = False
    gone.save()
    now = timezone.now()
    Membership.objects.filter(user=earlier).update(last_assigned_at=now - timedelta(hours=2))
    Membership.objects.filter(user=recently).update(last_assigned_at=now - timedelta(minutes=1))
    Membership.objects.filter(user=away).update(last_assigned_at=now - timedelta(days=9))

    first, second, third, fourth = (handoff(kb, visitor=f"v-{n}") for n in range(1, 5))
    assert [first.assignee, second.assignee, third.assignee, fourth.assignee] == [never, earlier, recently, never]
    assert first.assignee_id != second.assignee_id
    assert changes(first, "assignee") == [(None, "", "never")]
    assigned = {t.assignee_id for t in Ticket.objects.exclude(assignee=None)}
    assert away.pk not in assigned and gone.pk not in assigned


def test_nobody_available_leaves_the_ticket_unassigned(kb: Any) -> None:
    Organization.objects.filter(pk=kb.organization_id).update(auto_assign=True)
    member(kb.organization, "away", available=False)
    ticket = handoff(kb)
    assert ticket.assignee is None and changes(ticket, "assignee") == []


# --- replies and notes ---------------------------------------------------------------------------


def test_a_reply_reaches_the_customer_and_starts_the_clock(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    assert ticket.first_response_at is None and ticket.assignee is None
    message = services.ticket_reply(ticket=ticket, agent=agent, text="  Hi, let's look at your hub.  ")
    assert message.role == Message.Role.AGENT and message.author_id == agent.pk
    assert message.text == "Hi, let's look at your hub."
    replied = fresh(ticket)
    assert replied.status == S.OPEN and replied.assignee_id == agent.pk
    assert replied.first_response_at is not None and replied.conversation.status == C.HUMAN
    # It is in the conversation's log, which is what the widget replays.
    logged = [e.data for e in events_after(conversation=replied.conversation) if e.type == "message"]
    assert logged[-1]["role"] == "agent" and logged[-1]["text"] == "Hi, let's look at your hub."
    assert "look at your hub" in replied.search_text
    assert changes(ticket, "reply") == [(agent.pk, "", "Hi, let's look at your hub.")]

    # A later reply by someone else keeps the first response time and the assignee.
    colleague = member(kb.organization, "grace")
    services.ticket_reply(ticket=ticket, agent=colleague, text="Following up.")
    later = fresh(ticket)
    assert later.first_response_at == replied.first_response_at and later.assignee_id == agent.pk
    with pytest.raises(TicketRefused, match="empty"):
        services.ticket_reply(ticket=ticket, agent=agent, text="   ")
    assert Message.objects.filter(conversation=ticket.conversation, role="agent").count() == 2


def test_a_customer_writing_to_a_pending_ticket_reopens_it(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    services.ticket_reply(ticket=ticket, agent=agent, text="Could you send a photo of the light?")
    services.ticket_set_status(ticket=ticket, actor=agent, status=S.PENDING)
    assert fresh(ticket).status == S.PENDING and fresh(ticket).conversation.status == C.HUMAN
    conversations.message_receive(conversation=ticket.conversation, text="Here it is: solid amber")
    reopened = fresh(ticket)
    assert reopened.status == S.OPEN and "solid amber" in reopened.search_text
    assert changes(ticket, "status")[-1] == (None, S.PENDING, S.OPEN)
    # An open ticket stays open (no extra audit line).
    conversations.message_receive(conversation=ticket.conversation, text="Any news?")
    assert fresh(ticket).status == S.OPEN and len(changes(ticket, "status")) == 3  # reply, pending, customer


def test_notes_are_internal_and_audited(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    note = services.ticket_note_add(ticket=ticket, author=agent, text="  Customer is on firmware 2.1  ")
    assert TicketNote.objects.get(pk=note.pk).text == "Customer is on firmware 2.1" and note.author_id == agent.pk
    assert changes(ticket, "note") == [(agent.pk, "", "Customer is on firmware 2.1")]
    with pytest.raises(TicketRefused, match="empty"):
        services.ticket_note_add(ticket=ticket, author=agent, text=" \n ")
    with pytest.raises(TicketRefused, match="keep it under"):
        services.ticket_note_add(ticket=ticket, author=agent, text="x" * (services.NOTE_MAX_CHARS + 1))
    assert TicketNote.objects.filter(ticket=ticket).count() == 1
    # Never a message to the customer.
    assert not Message.objects.filter(conversation=ticket.conversation, text__contains="firmware").exists()


# --- tags and assignment -------------------------------------------------------------------------


def test_tags_are_normalised_created_per_organization_and_audited(kb: Any, agent: Any, make_kb: Any) -> None:
    ticket = handoff(kb)
    after = services.ticket_set_tags(
        ticket=ticket, actor=agent, names=["  Billing   Issue ", "billing issue", "VIP", ""]
    )
    assert after == ["billing issue", "vip"]
    assert sorted(fresh(ticket).tags.values_list("name", flat=True)) == ["billing issue", "vip"]
    assert changes(ticket, "tags") == [(agent.pk, "", "billing issue, vip")]
    # The same set again: no audit line.
    services.ticket_set_tags(ticket=ticket, actor=agent, names=["vip", "Billing Issue"])
    assert len(changes(ticket, "tags")) == 1
    services.ticket_set_tags(ticket=ticket, actor=agent, names=["vip"])
    assert changes(ticket, "tags")[-1] == (agent.pk, "billing issue, vip", "vip")
    # The longest usable name is the column's 50 characters.
    assert services.ticket_set_tags(ticket=ticket, actor=agent, names=["a" * 50]) == ["a" * 50]

    other = make_kb("other", "help")
    theirs = handoff(other)
    services.ticket_set_tags(ticket=theirs, actor=member(other.organization, "olga"), names=["vip"])
    assert Tag.objects.filter(name="vip").count() == 2  # one per organization


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (["#urgent"], "not a usable tag"),
        (["a" * 51], "not a usable tag"),
        (["semi;colon"], "not a usable tag"),
        ([f"tag{n}" for n in range(21)], "at most 20"),
    ],
)
def test_unusable_tags_are_refused_and_nothing_changes(kb: Any, agent: Any, names: list[str], reason: str) -> None:
    ticket = handoff(kb)
    services.ticket_set_tags(ticket=ticket, actor=agent, names=["kept"])
    with pytest.raises(TicketRefused, match=reason):
        services.ticket_set_tags(ticket=ticket, actor=agent, names=names)
    assert list(fresh(ticket).tags.values_list("name", flat=True)) == ["kept"]
    assert Tag.objects.filter(organization=kb.organization).count() == 1


def test_twenty_tags_are_fine(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    assert len(services.ticket_set_tags(ticket=ticket, actor=agent, names=[f"tag{n}" for n in range(20)])) == 20


def test_tickets_are_assigned_only_to_members(kb: Any, agent: Any, outsider: Any) -> None:
    ticket = handoff(kb)
    colleague = member(kb.organization, "grace")
    services.ticket_assign(ticket=ticket, actor=agent, assignee=colleague)
    assert fresh(ticket).assignee_id == colleague.pk
    with pytest.raises(TicketRefused, match="members of the organization"):
        services.ticket_assign(ticket=ticket, actor=agent, assignee=outsider)
    assert fresh(ticket).assignee_id == colleague.pk
    services.ticket_assign(ticket=ticket, actor=agent, assignee=colleague)  # no change, no audit line
    services.ticket_assign(ticket=ticket, actor=agent, assignee=None)
    assert fresh(ticket).assignee is None
    assert changes(ticket, "assignee") == [(agent.pk, "", "grace"), (agent.pk, "grace", "")]


# --- status: the conversation follows ------------------------------------------------------------


def test_status_changes_keep_the_conversation_in_step(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    services.ticket_reply(ticket=ticket, agent=agent, text="Fixed on our side.")

    resolved = services.ticket_set_status(ticket=ticket, actor=agent, status=S.RESOLVED)
    assert resolved.status == S.RESOLVED and resolved.resolved_at is not None
    assert fresh(ticket).conversation.status == C.RESOLVED

    closed = services.ticket_set_status(ticket=ticket, actor=agent, status=S.CLOSED)
    assert closed.status == S.CLOSED and closed.resolved_at is not None
    assert fresh(ticket).conversation.status == C.CLOSED

    reopened = services.ticket_set_status(ticket=ticket, actor=agent, status=S.OPEN)
    assert reopened.status == S.OPEN and reopened.resolved_at is None
    assert fresh(ticket).conversation.status == C.HUMAN  # a person owns it again: the bot stays silent

    assert changes(ticket, "status") == [
        (agent.pk, S.NEW.value, S.OPEN.value),  # the reply
        (agent.pk, S.OPEN.value, S.RESOLVED.value),
        (agent.pk, S.RESOLVED.value, S.CLOSED.value),
        (agent.pk, S.CLOSED.value, S.OPEN.value),
    ]
    # The same status again is no change; an unknown one is refused.
    services.ticket_set_status(ticket=ticket, actor=agent, status=S.OPEN)
    assert len(changes(ticket, "status")) == 4
    with pytest.raises(TicketRefused, match="Unknown status"):
        services.ticket_set_status(ticket=ticket, actor=agent, status="done")


def test_a_customer_writing_after_resolution_gets_the_assistant_and_a_new_handoff_reopens(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    services.ticket_set_status(ticket=ticket, actor=agent, status=S.RESOLVED)
    conversations.message_receive(conversation=ticket.conversation, text="It broke again")
    assert fresh(ticket).conversation.status == C.BOT
    again = conversations.conversation_handoff(conversation=ticket.conversation, trigger="customer_asked")
    assert again.pk == ticket.pk and again.status == S.NEW and again.resolved_at is None
    assert changes(ticket, "status")[-1] == (None, S.RESOLVED, S.NEW)


# --- canned responses ----------------------------------------------------------------------------


def test_canned_responses_fill_their_placeholders(kb: Any, agent: Any) -> None:
    Organization.objects.filter(pk=kb.organization_id).update(name="Acme Home")
    ticket = handoff(kb, contact_id="user-7")
    canned = CannedResponse.objects.create(
        organization=kb.organization,
        title="Greeting",
        shortcut="hi",
        text="Hello {customer_name}, {agent_name} from {organization} here. {unknown} stays.",
    )
    text = services.canned_render(canned=canned, ticket=fresh(ticket), agent=agent)
    assert text == "Hello there, Ada Lovelace from Acme Home here. {unknown} stays."
    Contact.objects.filter(pk=ticket.contact_id).update(name="Sam")
    nameless = member(kb.organization, "bob")
    assert services.canned_render(canned=canned, ticket=fresh(ticket), agent=nameless).startswith(
        "Hello Sam, bob from Acme Home"
    )


def test_another_organizations_canned_response_is_refused(kb: Any, agent: Any, make_kb: Any) -> None:
    ticket = handoff(kb)
    theirs = CannedResponse.objects.create(
        organization=make_kb("other", "help").organization, title="Secret", shortcut="s", text="internal"
    )
    with pytest.raises(TicketRefused, match="No such canned response"):
        services.canned_render(canned=theirs, ticket=ticket, agent=agent)


# --- drafts --------------------------------------------------------------------------------------


def draft_for(ticket: Ticket, agent: Any, text: str = "Unplug the hub for ten seconds [1].") -> Draft:
    return Draft.objects.create(ticket=ticket, author=agent, question="My hub blinks amber", text=text)


def test_a_draft_sent_unchanged_or_edited_is_recorded_with_its_message(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    unchanged = draft_for(ticket, agent)
    # Whitespace differences are not an edit.
    message = services.ticket_reply(
        ticket=ticket, agent=agent, text="Unplug the hub  for ten seconds [1].\n", draft=unchanged
    )
    unchanged.refresh_from_db()
    assert unchanged.outcome == Draft.Outcome.SENT and unchanged.message_id == message.pk
    assert unchanged.final_text == message.text and unchanged.decided_at is not None

    edited = draft_for(ticket, agent)
    message = services.ticket_reply(ticket=ticket, agent=agent, text="Unplug the hub for a minute.", draft=edited)
    edited.refresh_from_db()
    assert edited.outcome == Draft.Outcome.EDITED and edited.final_text == "Unplug the hub for a minute."
    assert edited.message_id == message.pk
    assert [c[2] for c in changes(ticket, "draft")] == ["sent", "edited"]


def test_a_discarded_draft_is_recorded_once(kb: Any, agent: Any) -> None:
    ticket = handoff(kb)
    draft = draft_for(ticket, agent)
    decided = services.draft_decide(draft=draft, agent=agent, outcome=Draft.Outcome.DISCARDED)
    assert decided.outcome == Draft.Outcome.DISCARDED and decided.message_id is None and decided.final_text == ""
    first_decided_at = decided.decided_at
    # Deciding again (a double click, a retried request) changes nothing.
    again = services.draft_decide(draft=draft, agent=agent, outcome=None, final_text="something else")
    assert again.outcome == Draft.Outcome.DISCARDED and again.decided_at == first_decided_at
    assert changes(ticket, "draft") == [(agent.pk, "", "discarded")]
    with pytest.raises(TicketRefused, match="sent or discarded"):
        services.draft_decide(draft=draft_for(ticket, agent), agent=agent, outcome="sent")


def test_a_draft_of_another_ticket_is_refused_and_nothing_is_sent(kb: Any, agent: Any) -> None:
    ticket, other = handoff(kb, visitor="v-1"), handoff(kb, visitor="v-2")
    draft = draft_for(other, agent)
    with pytest.raises(TicketRefused, match="draft"):
        services.ticket_reply(ticket=ticket, agent=agent, text="Hello", draft=draft)
    assert not Message.objects.filter(conversation=ticket.conversation, role="agent").exists()
    draft.refresh_from_db()
    assert draft.outcome == Draft.Outcome.PENDING


@pytest.mark.slow
def test_a_draft_is_generated_for_the_agent_and_never_reaches_the_customer(lumen_kb: Any) -> None:
    agent = member(lumen_kb.organization, "ada")
    ticket = handoff(lumen_kb, "How do I set up wifi on my iPhone?")
    messages_before = Message.objects.filter(conversation=ticket.conversation).count()
    out = list(services.draft_stream(ticket=ticket, agent=agent))
    draft = out[-1]
    assert isinstance(draft, Draft) and draft.pk is not None
    assert draft.question == "How do I set up wifi on my iPhone?" and draft.outcome == Draft.Outcome.PENDING
    assert draft.abstained or draft.text
    assert {e.type for e in out[:-1]} >= {"done"}
    assert Message.objects.filter(conversation=ticket.conversation).count() == messages_before
    assert changes(ticket, "draft") == [(agent.pk, "", "abstained" if draft.abstained else "drafted")]


# --- nobody outside the organization -------------------------------------------------------------


def _attempts(ticket: Ticket, kb: Any) -> dict[str, Any]:
    canned = CannedResponse.objects.create(organization=kb.organization, title="Hi", shortcut="hi", text="Hi")
    draft = draft_for(ticket, None)
    return {
        "reply": lambda who: services.ticket_reply(ticket=ticket, agent=who, text="hello"),
        "note": lambda who: services.ticket_note_add(ticket=ticket, author=who, text="psst"),
        "status": lambda who: services.ticket_set_status(ticket=ticket, actor=who, status=S.CLOSED),
        "priority": lambda who: services.ticket_set_priority(ticket=ticket, actor=who, priority="urgent"),
        "assign": lambda who: services.ticket_assign(ticket=ticket, actor=who, assignee=None),
        "tags": lambda who: services.ticket_set_tags(ticket=ticket, actor=who, names=["x"]),
        "canned": lambda who: services.canned_render(canned=canned, ticket=ticket, agent=who),
        "draft_decide": lambda who: services.draft_decide(draft=draft, agent=who, outcome="discarded"),
        "draft_stream": lambda who: next(services.draft_stream(ticket=ticket, agent=who)),
    }


ACTIONS = ["reply", "note", "status", "priority", "assign", "tags", "canned", "draft_decide", "draft_stream"]


@pytest.mark.parametrize("action", ACTIONS)
def test_every_service_refuses_someone_outside_the_organization(
    kb: Any, agent: Any, outsider: Any, action: str
) -> None:
    ticket = handoff(kb)
    services.ticket_assign(ticket=ticket, actor=agent, assignee=agent)
    attempt = _attempts(ticket, kb)[action]
    log_before = TicketChange.objects.filter(ticket=ticket).count()
    messages_before = Message.objects.count()
    with pytest.raises(TicketRefused, match="not a member"):
        attempt(outsider)
    after = fresh(ticket)
    assert (after.status, after.priority, after.assignee_id) == (S.NEW, "normal", agent.pk)
    assert after.conversation.status == C.WAITING_HUMAN and not after.tags.exists()
    assert TicketChange.objects.filter(ticket=ticket).count() == log_before
    assert Message.objects.count() == messages_before and not TicketNote.objects.exists()
    assert not Draft.objects.exclude(outcome=Draft.Outcome.PENDING).exists()


def test_a_reply_on_a_resolved_ticket_reopens_it_with_its_conversation(make_kb: Any) -> None:
    kb = make_kb("acme")
    agent = get_user_model().objects.create_user("rosa", "rosa@example.com", "pw")
    membership_set(organization=kb.organization, user=agent, role="agent")
    conversation = conversations.conversation_start(organization=kb.organization, knowledge_bases=[kb], visitor_id="v")
    conversations.message_receive(conversation=conversation, text="Help")
    ticket = conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")
    services.ticket_set_status(ticket=ticket, actor=agent, status="resolved")
    services.ticket_reply(ticket=ticket, agent=agent, text="One more thing: the firmware update is out.")
    ticket.refresh_from_db()
    conversation.refresh_from_db()
    assert ticket.status == "open" and ticket.resolved_at is None and conversation.status == "human"
    last = ticket.changes.filter(field="status").order_by("-pk").first()
    assert last is not None and (last.before, last.after) == ("resolved", "open")


def test_a_reply_from_a_draft_carries_the_citations_it_kept(make_kb: Any) -> None:
    kb = make_kb("acme")
    agent = get_user_model().objects.create_user("ines", "ines@example.com", "pw")
    membership_set(organization=kb.organization, user=agent, role="agent")
    conversation = conversations.conversation_start(organization=kb.organization, knowledge_bases=[kb], visitor_id="v")
    conversations.message_receive(conversation=conversation, text="Why is the light amber?")
    ticket = conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")
    cites = [
        {"n": 1, "source": "a.md", "title": "Status light", "section": "", "url": "https://x/a", "inferred": False},
        {"n": 2, "source": "b.md", "title": "Wi-Fi", "section": "", "url": "https://x/b", "inferred": False},
    ]
    draft = Draft.objects.create(
        ticket=ticket, author=agent, question="q", text="Amber means no internet [1]. Reconnect [2].", citations=cites
    )
    sent = services.ticket_reply(ticket=ticket, agent=agent, text="Amber means no internet [1].", draft=draft)
    assert [c["n"] for c in sent.citations] == [1]  # the agent removed the sentence citing [2]
    plain = services.ticket_reply(ticket=ticket, agent=agent, text="Anything else? [1]")
    assert plain.citations == []  # no draft, no citations claimed
