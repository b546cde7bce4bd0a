"""Writes for conversations: the bot/human state machine, messages, handoff to a person.

One state machine (:data:`TRANSITIONS`): ``bot -> waiting_human -> human -> resolved``, plus
``closed`` and reopen. Every change takes the conversation's row lock, checks the transition,
and appends to the conversation's event log in the same transaction, so the log's order is the
order things happened. The assistant answers only while the status is ``bot``: checked right
before it streams and again before its answer is saved (an agent who takes over mid-answer wins).
Handoff is always a structured action (the customer's choice, the engine's ``error`` with
``handoff``, an admin rule on the customer's words), never text parsed from the model's output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from ingestion.tags import validate_tags
from resolvo import live
from resolvo.answers import language as lang
from resolvo.answers.engine import Turn
from resolvo.answers.events import Event
from resolvo.answers.services import answer_stream
from resolvo.conversations.models import Conversation, ConversationEvent, HandoffRule, Message
from resolvo.knowledge.models import KnowledgeBase
from resolvo.observability.metrics import handoff_recorded
from resolvo.organizations.models import Organization
from resolvo.tickets import intake
from resolvo.tickets.models import Ticket
from resolvo.webhooks.services import event_emit

log = logging.getLogger(__name__)

Status = Conversation.Status
Role = Message.Role

TRANSITIONS: dict[str, set[str]] = {
    Status.BOT: {Status.WAITING_HUMAN, Status.HUMAN, Status.RESOLVED, Status.CLOSED},
    Status.WAITING_HUMAN: {Status.HUMAN, Status.RESOLVED, Status.CLOSED},
    Status.HUMAN: {Status.WAITING_HUMAN, Status.RESOLVED, Status.CLOSED},
    Status.RESOLVED: {Status.BOT, Status.HUMAN, Status.CLOSED},
    Status.CLOSED: {Status.BOT, Status.HUMAN},
}

HANDOFF_MESSAGE = lang.message("handoff", "en")
"""The system message a handoff adds, in English; the customer sees it in their language."""


class InvalidTransition(ValueError):
    """The conversation cannot go from its status to the one asked for."""


class MessageRejected(ValueError):
    """The customer's message cannot be accepted; the message says why, for the customer."""


# --- the state machine and the event log ---------------------------------------------------------


def _locked(conversation: Conversation) -> Conversation:
    """The conversation's row, locked until the transaction ends. Caller is in a transaction."""
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def _event(conversation: Conversation, type: str, data: dict[str, Any]) -> ConversationEvent:
    """Append to the log. Caller holds the row lock (``_locked``), which orders ``seq``."""
    conversation.last_event_seq += 1
    Conversation.objects.filter(pk=conversation.pk).update(last_event_seq=conversation.last_event_seq)
    event = ConversationEvent.objects.create(
        conversation=conversation, seq=conversation.last_event_seq, type=type, data=data
    )
    live.publish_on_commit(f"conversation:{conversation.pk}", {"seq": event.seq})
    live.publish_on_commit(
        f"organization:{conversation.organization_id}", {"conversation": conversation.pk, "type": type}
    )
    return event


def _move(conversation: Conversation, to: str, *, reason: str) -> None:
    """Change the status of a locked conversation, logging it. Same status: nothing happens."""
    if conversation.status == to:
        return
    if to not in TRANSITIONS[conversation.status]:
        raise InvalidTransition(f"A conversation that is {conversation.status} cannot become {to}.")
    before = conversation.status
    conversation.status = to
    if to == Status.BOT:
        conversation.bot_epoch += 1  # a reopened conversation starts a fresh bot context
    conversation.save(update_fields=["status", "bot_epoch", "updated_at"])
    _event(conversation, ConversationEvent.Type.STATUS, {"from": before, "to": to, "reason": reason})


def _message(conversation: Conversation, role: str, text: str, **fields: Any) -> Message:
    message = Message.objects.create(
        conversation=conversation, role=role, text=text, bot_epoch=conversation.bot_epoch, **fields
    )
    _event(conversation, ConversationEvent.Type.MESSAGE, message_as_dict(message))
    intake.ticket_message_added(conversation=conversation, role=role, text=text)
    event_emit(
        organization_id=conversation.organization_id,
        type="message.created",
        data={"conversation": conversation.pk, **message_as_dict(message)},
    )
    return message


def message_as_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "citations": message.citations,
        "offers_handoff": message.offers_handoff,
        "created_at": message.created_at.isoformat(),
    }


# --- customers ---------------------------------------------------------------------------------


@transaction.atomic
def conversation_start(
    *,
    organization: Organization,
    knowledge_bases: Sequence[KnowledgeBase],
    visitor_id: str,
    channel: str = Conversation.Channel.WIDGET,
    language: str = "",
    contact_id: str = "",
    tags: Sequence[str] = (),
) -> Conversation:
    """A new conversation drawing on ``knowledge_bases`` (all of ``organization``'s). ``tags``
    (checked: :class:`~ingestion.tags.TagError`) scope every answer and agent draft in it to the
    documents with any of them, for its whole life; none: the whole knowledge base."""
    if any(kb.organization_id != organization.pk for kb in knowledge_bases):
        raise ValueError("a conversation draws only on its own organization's knowledge bases")
    conversation = Conversation.objects.create(
        organization=organization,
        visitor_id=visitor_id,
        channel=channel,
        language=language,
        contact_id=contact_id,
        tags=validate_tags(list(tags)),
    )
    conversation.knowledge_bases.set(knowledge_bases)
    return conversation


def message_receive(
    *, conversation: Conversation, text: str, idempotency_key: str | None = None
) -> tuple[Message, bool]:
    """Record a customer message; ``(message, created)``. The same ``idempotency_key`` twice gives
    the first message back (a retried send never duplicates). A message to a resolved or closed
    conversation reopens it with a fresh bot context; one matching an admin handoff rule goes
    straight to a person."""
    text = (text or "").strip()
    if not text:
        raise MessageRejected("Please type a message.")
    limit = settings.CONVERSATION_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise MessageRejected(f"Your message is {len(text):,} characters long; please keep it under {limit:,}.")
    if idempotency_key:
        existing = Message.objects.filter(conversation=conversation, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            locked = _locked(conversation)
            if locked.status in (Status.RESOLVED, Status.CLOSED):
                _move(locked, Status.BOT, reason="customer_wrote_again")
            message = _message(locked, Role.CUSTOMER, text, idempotency_key=idempotency_key or "")
            rule = _matching_rule(locked, text)
            if rule is not None and locked.status == Status.BOT:
                _handoff(locked, trigger="rule", detail=f"The message matched the handoff rule {rule.phrase!r}.")
    except IntegrityError:
        # The same key raced in from a retry: the other request stored it first.
        return Message.objects.get(conversation=conversation, idempotency_key=idempotency_key), False
    conversation.refresh_from_db()
    return message, True


def _matching_rule(conversation: Conversation, text: str) -> HandoffRule | None:
    lowered = text.casefold()
    for rule in HandoffRule.objects.filter(organization_id=conversation.organization_id, active=True):
        if rule.phrase.casefold() in lowered:
            return rule
    return None


def conversation_answer_stream(*, conversation: Conversation, message: Message) -> Iterator[Event]:
    """The assistant's answer to ``message``, streamed as answer events, and saved when done.

    Nothing is streamed unless the conversation is with the bot right now, and the answer is
    saved only if it still is when the answer is complete: an agent who takes over while the
    answer streams owns the conversation from then on. The engine's ``error`` with ``handoff``
    hands the conversation to a person.
    """
    conversation.refresh_from_db()
    if conversation.status != Status.BOT:
        return
    knowledge_base = conversation.knowledge_bases.order_by("pk").first()
    if knowledge_base is None:
        raise ValueError(f"conversation {conversation.pk} has no knowledge base to answer from")
    history = _history(conversation, before=message)
    citations: list[Any] = []
    for event in answer_stream(
        knowledge_base=knowledge_base,
        question=message.text,
        history=history,
        channel=conversation.channel,
        tags=conversation.tags or (),
        language=conversation.language or None,
    ):
        if event.type == "citations":
            citations = list(event.as_citations()["citations"])
        elif event.type == "done":
            done = event.as_done()
            if done["language"] != conversation.language:  # the customer wrote in another language
                conversation.language = done["language"]
                Conversation.objects.filter(pk=conversation.pk).update(language=done["language"])
            saved = _answer_save(
                conversation,
                text=done["answer"],
                citations=citations,
                trace_id=done.get("trace_id"),
                abstained=done["abstained"],
            )
            done["message_id"] = saved.pk if saved is not None else None
        elif event.type == "error" and event.as_error()["handoff"]:
            conversation_handoff(conversation=conversation, trigger="assistant_unavailable")
        yield event


def conversation_draft_stream(*, conversation: Conversation, message: Message) -> Iterator[Event]:
    """A draft answer to ``message`` for an agent: the answer events over the whole conversation
    (agents' replies count as the company's turns), whatever its status, saved nowhere here
    (the trace is kept, channel ``draft``) and never shown to the customer."""
    knowledge_base = conversation.knowledge_bases.order_by("pk").first()
    if knowledge_base is None:
        raise ValueError(f"conversation {conversation.pk} has no knowledge base to answer from")
    rows = Message.objects.filter(
        conversation=conversation, pk__lt=message.pk, role__in=[Role.CUSTOMER, Role.ASSISTANT, Role.AGENT]
    ).order_by("pk")
    history = [Turn("user" if m.role == Role.CUSTOMER else "assistant", m.text) for m in rows]
    yield from answer_stream(
        knowledge_base=knowledge_base,
        question=message.text,
        history=history,
        channel="draft",
        tags=conversation.tags or (),
        language=conversation.language or None,  # the reply goes to the customer
    )


def _history(conversation: Conversation, *, before: Message) -> list[Turn]:
    """The turns of the current bot context before ``before``, oldest first."""
    turns = []
    rows = Message.objects.filter(
        conversation=conversation,
        bot_epoch=conversation.bot_epoch,
        pk__lt=before.pk,
        role__in=[Role.CUSTOMER, Role.ASSISTANT],
    ).order_by("pk")
    for m in rows:
        turns.append(Turn("user" if m.role == Role.CUSTOMER else "assistant", m.text))
    return turns


@transaction.atomic
def _answer_save(
    conversation: Conversation, *, text: str, citations: list[Any], trace_id: int | None, abstained: bool
) -> Message | None:
    locked = _locked(conversation)
    if locked.status != Status.BOT:
        log.info("conversation %s is no longer with the bot; the finished answer is not saved", conversation.pk)
        return None
    return _message(locked, Role.ASSISTANT, text, citations=citations, trace_id=trace_id, offers_handoff=abstained)


# --- handoff and agents ------------------------------------------------------------------------------


@transaction.atomic
def conversation_handoff(*, conversation: Conversation, trigger: str, detail: str = "") -> Ticket:
    """Hand the conversation to a person: a ticket with the transcript's summary, and a message
    telling the customer what happens next. Asking twice gives the same ticket."""
    locked = _locked(conversation)
    return _handoff(locked, trigger=trigger, detail=detail)


def _handoff(conversation: Conversation, *, trigger: str, detail: str) -> Ticket:
    existing = Ticket.objects.filter(conversation=conversation).first()
    if conversation.status in (Status.WAITING_HUMAN, Status.HUMAN) and existing is not None:
        return existing
    _move(conversation, Status.WAITING_HUMAN, reason=f"handoff:{trigger}")
    transaction.on_commit(lambda: handoff_recorded(trigger=trigger))  # metrics
    customer = list(
        Message.objects.filter(conversation=conversation, role=Role.CUSTOMER)
        .order_by("pk")
        .values_list("text", flat=True)
    )
    subject = (customer[0] if customer else intake.DEFAULT_SUBJECT).splitlines()[0][:200]
    transcript = "\n".join(
        Message.objects.filter(conversation=conversation).order_by("pk").values_list("text", flat=True)
    )
    ticket = intake.ticket_for_handoff(
        conversation=conversation,
        subject=subject,
        summary=ticket_summary(conversation, trigger=trigger, detail=detail),
        trigger=trigger,
        transcript=transcript,
    )
    _message(conversation, Role.SYSTEM, lang.message("handoff", conversation.language))
    return ticket


_TRIGGERS = {
    "customer_accepted": "The assistant could not answer from the documentation and the customer asked for a person.",
    "customer_asked": "The customer asked to talk to a person.",
    "assistant_unavailable": "The assistant was unavailable.",
    "rule": "An admin handoff rule matched.",
}


def ticket_summary(conversation: Conversation, *, trigger: str, detail: str = "") -> str:
    """A few lines for the agent: why it was handed over, what the customer asked, what the
    assistant said last. Extracted from the transcript, not generated."""
    messages = list(Message.objects.filter(conversation=conversation).order_by("pk"))
    asked = [m.text for m in messages if m.role == Role.CUSTOMER]
    answered = [m for m in messages if m.role == Role.ASSISTANT]
    lines = [_TRIGGERS.get(trigger, f"Handed over ({trigger}).")]
    if detail:
        lines.append(detail)
    if asked:
        lines.append(f"First question: {asked[0][:300]}")
    if len(asked) > 1:
        lines.append(f"Latest message: {asked[-1][:300]}")
    if answered:
        last = answered[-1]
        outcome = "could not answer" if last.offers_handoff else "answered"
        lines.append(f"The assistant {outcome} ({len(answered)} answer(s), {len(last.citations)} citation(s) last).")
    return "\n".join(lines)


@transaction.atomic
def conversation_agent_reply(
    *, conversation: Conversation, agent: Any, text: str, citations: Sequence[dict[str, Any]] = ()
) -> Message:
    """An agent's reply: the conversation is with a person from now on (the bot stays silent).
    ``citations`` (an AI draft's, verified) travel with it, so the customer sees the sources."""
    text = (text or "").strip()
    if not text:
        raise MessageRejected("The reply is empty.")
    locked = _locked(conversation)
    _move(locked, Status.HUMAN, reason="agent_replied")
    Ticket.objects.filter(conversation=locked, status=Ticket.Status.NEW).update(status=Ticket.Status.OPEN)
    return _message(locked, Role.AGENT, text, author=agent, citations=list(citations))


@transaction.atomic
def conversation_resolve(*, conversation: Conversation) -> None:
    locked = _locked(conversation)
    _move(locked, Status.RESOLVED, reason="resolved")
    Ticket.objects.filter(conversation=locked).exclude(status=Ticket.Status.CLOSED).update(
        status=Ticket.Status.RESOLVED
    )


@transaction.atomic
def conversation_take(*, conversation: Conversation) -> None:
    """A person takes the conversation (an agent reopened its ticket): the bot stays silent."""
    locked = _locked(conversation)
    _move(locked, Status.HUMAN, reason="agent_took_over")


@transaction.atomic
def conversation_reopen(*, conversation: Conversation) -> None:
    """Back to the assistant, with a fresh bot context (earlier turns are not its history)."""
    locked = _locked(conversation)
    _move(locked, Status.BOT, reason="reopened")


@transaction.atomic
def conversation_close(*, conversation: Conversation) -> None:
    locked = _locked(conversation)
    _move(locked, Status.CLOSED, reason="closed")


TYPING_ROLES = (Role.CUSTOMER, Role.AGENT)


def conversation_typing(*, conversation: Conversation, role: str, name: str = "", typing: bool = True) -> None:
    """Someone is typing (or stopped): a live note to the conversation's open streams, not logged
    (it means nothing a moment later, and a replay must not show it). The widget shows an agent's
    typing; the dashboard a customer's."""
    if role not in TYPING_ROLES:
        raise ValueError(f"Only a customer or an agent types, not {role!r}.")
    live.publish(f"conversation:{conversation.pk}", {"typing": role, "name": name[:100], "on": typing})


@transaction.atomic
def conversation_rate(*, conversation: Conversation, score: int, comment: str = "") -> None:
    """The customer's satisfaction rating (1-5) and comment; the latest one counts."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1-5")
    locked = _locked(conversation)
    locked.csat_score, locked.csat_comment = score, comment
    locked.save(update_fields=["csat_score", "csat_comment", "updated_at"])
