"""Reads for conversations: replaying the event log, and finding a visitor's conversation."""

from __future__ import annotations

from django.db.models import QuerySet

from resolvo.conversations.models import Conversation, ConversationEvent, Message
from resolvo.organizations.models import Organization


class ConversationNotFound(LookupError):
    """No such conversation for this caller (the same answer for another tenant's ids)."""


def conversation_for_visitor(*, organization: Organization, visitor_id: str, conversation_id: int) -> Conversation:
    """The conversation ``conversation_id`` if it is ``visitor_id``'s in ``organization``."""
    found = Conversation.objects.filter(pk=conversation_id, organization=organization, visitor_id=visitor_id).first()
    if found is None:
        raise ConversationNotFound(f"No conversation {conversation_id}.")
    return found


def events_after(*, conversation: Conversation, seq: int = 0, limit: int = 500) -> QuerySet[ConversationEvent]:
    """The events a client has not seen yet (``seq`` is the last id it saw: SSE ``Last-Event-ID``)."""
    return ConversationEvent.objects.filter(conversation=conversation, seq__gt=seq).order_by("seq")[:limit]


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation).order_by("pk")


def conversations_in_organization(
    *, organization: Organization, status: str = "", channel: str = ""
) -> QuerySet[Conversation]:
    """``organization``'s conversations, optionally of one status and channel."""
    conversations = Conversation.objects.filter(organization=organization).select_related("ticket")
    if status:
        conversations = conversations.filter(status=status)
    if channel:
        conversations = conversations.filter(channel=channel)
    return conversations


def conversation_in_organization(*, organization: Organization, conversation_id: int) -> Conversation:
    """Conversation ``conversation_id`` of ``organization`` (any visitor's: agents' reads)."""
    found = Conversation.objects.filter(pk=conversation_id, organization=organization).select_related("ticket").first()
    if found is None:
        raise ConversationNotFound(f"No conversation {conversation_id}.")
    return found
