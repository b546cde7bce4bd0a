"""Tickets: what the assistant hands over to a person, and what agents work in the dashboard.

A ticket belongs to one organization and (for chat handoffs) one conversation, whose messages are
the ticket's thread. Around it: the requester (``Contact``), tags, internal notes, an audit log
of every change, SLA due times from the organization's policy for its priority, canned
responses, and the AI drafts agents asked for (with what became of each: the approved-answer
record a later fine-tuning uses).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from resolvo.organizations.models import Organization


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Contact(models.Model):
    """Who asked: the host site's verified user (``external_id``) or an anonymous visitor."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts")
    external_id = models.CharField(max_length=200, blank=True, help_text="The host site's verified user id.")
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=~models.Q(external_id=""),
                name="contact_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"Visitor {self.visitor_id[-6:]}"

    @property
    def display_name(self) -> str:
        return str(self)


class Tag(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class SLAPolicy(models.Model):
    """Targets for one priority in one organization, in minutes from the ticket's creation."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sla_policies")
    priority = models.CharField(max_length=16, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [models.UniqueConstraint(fields=["organization", "priority"], name="sla_unique_priority")]

    def __str__(self) -> str:
        return f"{self.priority}: respond {self.first_response_minutes} min, resolve {self.resolution_minutes} min"


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    Priority = Priority

    class Channel(models.TextChoices):
        WIDGET = "widget", "Chat widget"
        API = "api", "API"
        EMAIL = "email", "Email"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tickets")
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="ticket", null=True, blank=True
    )
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WIDGET)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_tickets"
    )
    tags = models.ManyToManyField(Tag, related_name="tickets", blank=True)
    subject = models.CharField(max_length=200)
    summary = models.TextField(blank=True, help_text="Why the assistant handed over, for the agent.")
    handoff_trigger = models.CharField(max_length=32, blank=True)
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    search_text = models.TextField(
        blank=True, help_text="Subject and messages, for full-text search (kept by the services)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"]),
            models.Index(fields=["organization", "-updated_at"], name="ticket_org_updated"),
            models.Index(fields=["organization", "assignee", "-updated_at"], name="ticket_org_assignee"),
            models.Index(fields=["organization", "priority", "-updated_at"], name="ticket_org_priority"),
            models.Index(fields=["organization", "first_response_due"], name="ticket_org_first_due"),
            models.Index(fields=["organization", "resolution_due"], name="ticket_org_resolution_due"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)

    @property
    def sla_breached(self) -> bool:
        """A due time passed without the first response or the resolution (open tickets only)."""
        from django.utils import timezone

        if self.status not in self.OPEN_STATUSES:
            return False
        now = timezone.now()
        late_response = self.first_response_at is None and self.first_response_due is not None
        late_resolution = self.resolved_at is None and self.resolution_due is not None
        return bool(
            (late_response and self.first_response_due < now)  # type: ignore[operator]
            or (late_resolution and self.resolution_due < now)  # type: ignore[operator]
        )

    @property
    def next_due(self) -> object:
        """The due time that matters now: first response until there is one, then resolution."""
        return self.first_response_due if self.first_response_at is None else self.resolution_due


class TicketNote(models.Model):
    """An internal note: agents only, never shown to the customer."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ticket", "id"]

    def __str__(self) -> str:
        return f"Note on #{self.ticket_id}: {self.text[:60]}"


class TicketChange(models.Model):
    """The audit log: who changed what on a ticket, and when (``actor`` None: the system)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    field = models.CharField(max_length=32, help_text="status, priority, assignee, tags, note, reply, draft, created.")
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ticket", "id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.field}: {self.before} -> {self.after}"


class CannedResponse(models.Model):
    """A reusable reply. Placeholders: {customer_name}, {agent_name}, {organization}."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="canned_responses")
    title = models.CharField(max_length=100)
    shortcut = models.SlugField(max_length=40, help_text="Typed after '/' in the reply box.")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["organization", "shortcut"], name="canned_unique_shortcut")]

    def __str__(self) -> str:
        return self.title


class Draft(models.Model):
    """An AI-drafted reply an agent asked for, and what became of it: sent unchanged, edited then
    sent (``final_text`` is what went out), or discarded. The approved-answer record."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Not decided yet"
        SENT = "sent", "Sent unchanged"
        EDITED = "edited", "Edited, then sent"
        DISCARDED = "discarded", "Discarded"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="drafts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    trace = models.ForeignKey("answers.AnswerTrace", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    question = models.TextField(help_text="The customer's message the draft answers.")
    text = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    abstained = models.BooleanField(default=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    final_text = models.TextField(blank=True)
    message = models.ForeignKey(
        "conversations.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ticket", "-id"]

    def __str__(self) -> str:
        return f"Draft for #{self.ticket_id} ({self.outcome})"
