"""Conversations through their services: the state machine, idempotent messages, the event log,
the bot silent once a person owns the conversation, and handoff to a ticket. Real PostgreSQL, the
embedded Qdrant engine and the bundled model."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from resolvo.conversations import services
from resolvo.conversations.models import Conversation, ConversationEvent, HandoffRule, Message
from resolvo.conversations.selectors import ConversationNotFound, conversation_for_visitor, events_after
from resolvo.tickets.models import Ticket

pytestmark = pytest.mark.django_db
S = Conversation.Status


def start(kb: Any, visitor: str = "v-1") -> Conversation:
    return services.conversation_start(organization=kb.organization, knowledge_bases=[kb], visitor_id=visitor)


def ask(conversation: Conversation, text: str, key: str | None = None) -> list[Any]:
    message, _ = services.message_receive(conversation=conversation, text=text, idempotency_key=key)
    return list(services.conversation_answer_stream(conversation=conversation, message=message))


def test_the_state_machine_allows_only_its_transitions(make_kb: Any) -> None:
    conversation = start(make_kb())
    services.conversation_resolve(conversation=conversation)
    with pytest.raises(services.InvalidTransition):
        services.conversation_handoff(conversation=conversation, trigger="customer_asked")
    services.conversation_close(conversation=conversation)
    services.conversation_reopen(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.status == S.BOT and conversation.bot_epoch == 2
    statuses = [e.data["to"] for e in events_after(conversation=conversation) if e.type == "status"]
    assert statuses == ["resolved", "closed", "bot"]


def test_a_retried_send_never_duplicates_and_the_log_replays_in_order(make_kb: Any) -> None:
    conversation = start(make_kb())
    first, created = services.message_receive(conversation=conversation, text="Hello", idempotency_key="k-1")
    again, created_again = services.message_receive(conversation=conversation, text="Hello", idempotency_key="k-1")
    assert created and not created_again and again.pk == first.pk
    services.message_receive(conversation=conversation, text="Are you there?", idempotency_key="k-2")
    assert Message.objects.filter(conversation=conversation).count() == 2
    seqs = list(ConversationEvent.objects.filter(conversation=conversation).values_list("seq", flat=True))
    assert seqs == [1, 2]
    # A client that saw event 1 gets exactly what it missed.
    assert [e.data["text"] for e in events_after(conversation=conversation, seq=1)] == ["Are you there?"]


@pytest.mark.parametrize(("text", "reason"), [("   ", "type a message"), ("x" * 5000, "under 2,000")])
def test_unusable_messages_get_a_clear_error_and_store_nothing(make_kb: Any, text: str, reason: str) -> None:
    conversation = start(make_kb())
    with pytest.raises(services.MessageRejected, match=reason):
        services.message_receive(conversation=conversation, text=text)
    assert not Message.objects.filter(conversation=conversation).exists()


def test_conversations_stay_in_their_organization(make_kb: Any) -> None:
    mine, theirs = make_kb("alpha", "help"), make_kb("beta", "help")
    with pytest.raises(ValueError, match="own organization"):
        services.conversation_start(organization=mine.organization, knowledge_bases=[theirs], visitor_id="v")
    conversation = start(mine, visitor="v-alpha")
    with pytest.raises(ConversationNotFound):
        conversation_for_visitor(
            organization=theirs.organization, visitor_id="v-alpha", conversation_id=conversation.pk
        )
    with pytest.raises(ConversationNotFound):
        conversation_for_visitor(
            organization=mine.organization, visitor_id="someone-else", conversation_id=conversation.pk
        )


def test_the_answer_is_streamed_saved_with_its_trace_and_follow_ups_carry_history(lumen_kb: Any) -> None:
    conversation = start(lumen_kb)
    events = ask(conversation, "How do I connect the hub to Wi-Fi on my iPhone?")
    assert events[0].type == "sources" and events[-1].type == "done"
    reply = Message.objects.get(conversation=conversation, role=Message.Role.ASSISTANT)
    done = events[-1].as_done()
    assert reply.text == done["answer"] and reply.trace_id == done["trace_id"]
    ask(conversation, "and on Android?")
    from resolvo.answers.models import AnswerTrace

    follow_up = AnswerTrace.objects.order_by("-pk").first()
    assert follow_up is not None and [h["role"] for h in follow_up.history] == ["user", "assistant"]
    assert "Android" in follow_up.standalone_query and "Wi-Fi" in follow_up.standalone_query


def test_the_bot_is_silent_once_a_person_takes_over_even_mid_answer(lumen_kb: Any) -> None:
    conversation = start(lumen_kb)
    agent = get_user_model().objects.create_user("agent", "agent@example.com", "pw")
    message, _ = services.message_receive(conversation=conversation, text="What does a blinking amber hub light mean?")
    stream = services.conversation_answer_stream(conversation=conversation, message=message)
    assert next(stream).type == "sources"
    # The race: an agent replies while the answer is still streaming.
    services.conversation_agent_reply(conversation=conversation, agent=agent, text="Hi, I'm Sam from Lumen.")
    list(stream)
    roles = list(Message.objects.filter(conversation=conversation).values_list("role", flat=True))
    assert roles == ["customer", "agent"]  # the finished answer was not saved
    conversation.refresh_from_db()
    assert conversation.status == S.HUMAN
    # And the next customer message gets no bot answer at all.
    assert ask(conversation, "Thanks Sam, is that a Wi-Fi problem?") == []


def test_the_customer_accepts_a_person_after_an_abstention(lumen_kb: Any) -> None:
    conversation = start(lumen_kb)
    events = ask(conversation, "Who won the 1998 football world cup final?")
    assert events[-1].as_done()["abstained"]
    offer = Message.objects.get(conversation=conversation, role=Message.Role.ASSISTANT)
    assert offer.offers_handoff
    ticket = services.conversation_handoff(conversation=conversation, trigger="customer_accepted")
    assert services.conversation_handoff(conversation=conversation, trigger="customer_accepted").pk == ticket.pk
    conversation.refresh_from_db()
    assert conversation.status == S.WAITING_HUMAN
    assert ticket.status == Ticket.Status.NEW and ticket.organization_id == lumen_kb.organization_id
    assert ticket.subject == "Who won the 1998 football world cup final?"
    assert "asked for a person" in ticket.summary and "could not answer" in ticket.summary
    last = Message.objects.filter(conversation=conversation).last()
    assert last is not None and last.role == Message.Role.SYSTEM and "support team" in last.text
    assert ask(conversation, "Hello?") == []


def test_an_unavailable_assistant_hands_over(lumen_kb: Any, llm_down: Any) -> None:
    conversation = start(lumen_kb)
    events = ask(conversation, "What does a blinking amber status light on the hub mean?")
    assert events[-1].type == "error" and events[-1].as_error()["handoff"]
    conversation.refresh_from_db()
    assert conversation.status == S.WAITING_HUMAN
    assert Ticket.objects.get(conversation=conversation).handoff_trigger == "assistant_unavailable"


def test_an_admin_rule_sends_matching_messages_straight_to_a_person(make_kb: Any) -> None:
    kb = make_kb()
    HandoffRule.objects.create(organization=kb.organization, phrase="refund")
    conversation = start(kb)
    message, _ = services.message_receive(conversation=conversation, text="I want a REFUND for my hub")
    conversation.refresh_from_db()
    assert conversation.status == S.WAITING_HUMAN
    assert Ticket.objects.get(conversation=conversation).handoff_trigger == "rule"
    assert list(services.conversation_answer_stream(conversation=conversation, message=message)) == []


def test_writing_to_a_resolved_conversation_reopens_it_with_a_fresh_bot_context(lumen_kb: Any) -> None:
    conversation = start(lumen_kb)
    ask(conversation, "How long is the warranty on bulbs?")
    agent = get_user_model().objects.create_user("agent", "agent@example.com", "pw")
    services.conversation_agent_reply(conversation=conversation, agent=agent, text="Two years.")
    services.conversation_resolve(conversation=conversation)
    assert Ticket.objects.filter(conversation=conversation).count() == 0  # no handoff happened
    ask(conversation, "Can I change my hub's Wi-Fi network?")
    conversation.refresh_from_db()
    assert conversation.status == S.BOT and conversation.bot_epoch == 2
    from resolvo.answers.models import AnswerTrace

    latest = AnswerTrace.objects.order_by("-pk").first()
    assert latest is not None and latest.history == []  # the earlier turns are not its context


def test_a_customer_writing_in_spanish_gets_the_conversation_in_spanish(lumen_kb: Any) -> None:
    from resolvo.answers import language

    conversation = start(lumen_kb)
    events = ask(conversation, "¿Quién ganó el campeonato mundial de fútbol de 1998 en Francia?")
    done = events[-1].as_done()
    assert done["language"] == "es" and done["answer"] == language.message("abstain", "es")
    conversation.refresh_from_db()
    assert conversation.language == "es"
    ask(conversation, "ok")  # too short to tell: the conversation keeps Spanish
    conversation.refresh_from_db()
    assert conversation.language == "es"
    services.conversation_handoff(conversation=conversation, trigger="customer_asked")
    notice = Message.objects.filter(conversation=conversation, role="system").order_by("pk").last()
    assert notice is not None and notice.text == language.message("handoff", "es")
