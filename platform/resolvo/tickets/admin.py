from __future__ import annotations

from django.contrib import admin

from resolvo.organizations.admin import TenantScopedAdmin
from resolvo.tickets.models import Ticket


@admin.register(Ticket)
class TicketAdmin(TenantScopedAdmin):
    list_display = ["pk", "subject", "organization", "status", "priority", "handoff_trigger", "created_at"]
    list_filter = ["status", "priority", ("organization", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organization"]
    search_fields = ["subject", "summary"]
    readonly_fields = ["conversation", "summary", "handoff_trigger"]
