from __future__ import annotations

from django.contrib import admin

from resolvo.organizations.admin import TenantScopedAdmin
from resolvo.tickets.models import CannedResponse, SLAPolicy, Tag, Ticket


@admin.register(Ticket)
class TicketAdmin(TenantScopedAdmin):
    list_display = ["pk", "subject", "organization", "status", "priority", "handoff_trigger", "created_at"]
    list_filter = ["status", "priority", ("organization", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organization"]
    search_fields = ["subject", "summary"]
    readonly_fields = ["conversation", "summary", "handoff_trigger"]


@admin.register(SLAPolicy)
class SLAPolicyAdmin(TenantScopedAdmin):
    list_display = ["organization", "priority", "first_response_minutes", "resolution_minutes"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "priority"]


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ["title", "shortcut", "organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["title", "shortcut", "text"]


@admin.register(Tag)
class TagAdmin(TenantScopedAdmin):
    list_display = ["name", "organization"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]
