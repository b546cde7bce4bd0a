"""Tickets: what the assistant hands over to a person. The agent dashboard builds on these."""

from __future__ import annotations

from django.db import models

from resolvo.organizations.models import Organization


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tickets")
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="ticket", null=True, blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)
    subject = models.CharField(max_length=200)
    summary = models.TextField(blank=True, help_text="Why the assistant handed over, for the agent.")
    handoff_trigger = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"
