from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from resolvo.conversations.models import Conversation, HandoffRule, Message
from resolvo.organizations.admin import TenantScopedAdmin


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["created_at", "role", "text", "offers_handoff", "trace"]
    readonly_fields = ["created_at", "role", "text", "offers_handoff", "trace"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    """Read-only here; agents work conversations through the services (and the dashboard)."""

    list_display = ["pk", "organization", "status", "channel", "visitor_id", "updated_at"]
    list_filter = ["status", "channel", ("organization", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organization"]
    readonly_fields = ["organization", "status", "bot_epoch", "visitor_id", "contact_id", "channel", "language", "tags"]
    exclude = ["knowledge_bases", "last_event_seq"]
    inlines = [MessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HandoffRule)
class HandoffRuleAdmin(TenantScopedAdmin):
    list_display = ["phrase", "organization", "active"]
    list_filter = ["active", ("organization", admin.RelatedOnlyFieldListFilter)]
