"""Conversations between a customer and the assistant or an agent, with an ordered event log.

The status is a state machine (``conversations.services``): ``bot -> waiting_human -> human ->
resolved``, plus ``closed`` and reopen. The bot answers only while the status is ``bot``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from resolvo.answers.models import AnswerTrace
from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Organization


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot", "Assistant answering"
        WAITING_HUMAN = "waiting_human", "Waiting for a person"
        HUMAN = "human", "With a person"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Channel(models.TextChoices):
        WIDGET = "widget", "Chat widget"
        API = "api", "API"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversations")
    knowledge_bases = models.ManyToManyField(KnowledgeBase, related_name="conversations")
    visitor_id = models.CharField(max_length=64, db_index=True, help_text="The widget's anonymous visitor.")
    contact_id = models.CharField(max_length=200, blank=True, help_text="The host site's verified user id.")
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WIDGET)
    language = models.CharField(max_length=16, blank=True)
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text="The knowledge scope set at the start: answers use only documents with one of these tags.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOT, db_index=True)
    bot_epoch = models.PositiveIntegerField(
        default=1, help_text="Raised on reopen: the assistant's context starts from there."
    )
    last_event_seq = models.PositiveBigIntegerField(default=0)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-5, from the customer.")
    csat_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["organization", "status", "-updated_at"])]

    def __str__(self) -> str:
        return f"conversation {self.pk} ({self.status})"


class Message(models.Model):
    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        ASSISTANT = "assistant", "Assistant"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    citations = models.JSONField(default=list, blank=True)
    trace = models.ForeignKey(AnswerTrace, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    bot_epoch = models.PositiveIntegerField(default=1)
    offers_handoff = models.BooleanField(default=False, help_text="The assistant offered a person here.")
    idempotency_key = models.CharField(max_length=100, blank=True, help_text="The client's key for this send.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="message_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class MessageFeedback(models.Model):
    """A customer's thumbs up or down on one answer."""

    class Rating(models.TextChoices):
        UP = "up", "Helpful"
        DOWN = "down", "Not helpful"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=8, choices=Rating.choices)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.rating} on {self.message_id}"


class ConversationEvent(models.Model):
    """What happened, in order (``seq`` counts up per conversation), so a client can replay what
    it missed from the last id it saw."""

    class Type(models.TextChoices):
        MESSAGE = "message", "Message"
        STATUS = "status", "Status"
        TYPING = "typing", "Typing"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=16, choices=Type.choices)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="event_unique_seq")]

    def __str__(self) -> str:
        return f"{self.seq} {self.type}"


class HandoffRule(models.Model):
    """An admin rule: a customer message containing ``phrase`` goes straight to a person."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="handoff_rules")
    phrase = models.CharField(max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "phrase"], name="handoff_rule_unique")]

    def __str__(self) -> str:
        return self.phrase
