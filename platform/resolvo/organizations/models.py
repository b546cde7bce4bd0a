"""Tenants and who works in them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Organization(models.Model):
    """A tenant: one company using Resolvo. Every piece of data hangs off exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    auto_assign = models.BooleanField(
        default=False, help_text="Assign new tickets round-robin over the agents marked available."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    available = models.BooleanField(default=True, help_text="Takes new tickets in round-robin assignment.")
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage_knowledge(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


def _public_key() -> str:
    import secrets

    return "pk_" + secrets.token_urlsafe(18)


def _identity_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)


class Widget(models.Model):
    """One embeddable chat widget of an organization: where it may run, what it answers from,
    how it looks, and whether visitors must prove who they are."""

    class Identity(models.TextChoices):
        OFF = "off", "Anonymous visitors only"
        OPTIONAL = "optional", "Verify identity when the page sends it"
        REQUIRED = "required", "Require a verified identity"

    class Position(models.TextChoices):
        RIGHT = "right", "Bottom right"
        LEFT = "left", "Bottom left"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="widgets")
    name = models.CharField(max_length=100, default="Help centre")
    public_key = models.CharField(max_length=64, unique=True, default=_public_key, editable=False)
    allowed_origins = models.TextField(
        blank=True, help_text="One origin per line, e.g. https://www.example.com (scheme, host and port)."
    )
    knowledge_bases = models.ManyToManyField("knowledge.KnowledgeBase", related_name="widgets", blank=True)
    greeting = models.CharField(max_length=300, default="Hi! Ask me anything about our products.")
    colour = models.CharField(max_length=7, default="#2563eb", help_text="Accent colour, #RRGGBB.")
    position = models.CharField(max_length=8, choices=Position.choices, default=Position.RIGHT)
    launcher_text = models.CharField(max_length=40, default="Help")
    identity = models.CharField(max_length=16, choices=Identity.choices, default=Identity.OFF)
    identity_secret = models.CharField(
        max_length=128, default=_identity_secret, help_text="HMAC-SHA256 key the host page signs user ids with."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    key_rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}"

    @property
    def origins(self) -> set[str]:
        return {line.strip().rstrip("/").lower() for line in self.allowed_origins.splitlines() if line.strip()}


class Invitation(models.Model):
    """An admin's invitation to join an organization (there is no open sign-up). The link holds
    a random token; only its SHA-256 is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.AGENT)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"


class ApiToken(models.Model):
    """A member's personal token for the REST API: shown once, stored as SHA-256, revocable,
    acting with the member's role in the member's organization."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
