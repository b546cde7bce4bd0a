from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from resolvo.answers.models import AnswerTrace
from resolvo.organizations.admin import TenantScopedAdmin


@admin.register(AnswerTrace)
class AnswerTraceAdmin(TenantScopedAdmin):
    """Customers' questions and what the assistant did with them: read-only, per organization."""

    list_display = [
        "created_at",
        "organization",
        "question",
        "abstained",
        "abstain_reason",
        "backend",
        "completion_tokens",
    ]
    list_filter = ["abstained", ("organization", admin.RelatedOnlyFieldListFilter), "backend", "channel"]
    search_fields = ["question", "answer", "standalone_query"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: AnswerTrace | None = None) -> list[str]:
        return [f.name for f in AnswerTrace._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
