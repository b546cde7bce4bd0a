from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from resolvo.organizations.admin import TenantScopedAdmin
from resolvo.tuning.models import TuningRun


@admin.register(TuningRun)
class TuningRunAdmin(TenantScopedAdmin):
    """Tuning runs, read-only: they are started, promoted and rolled back on the dashboard's
    Assistant model page (or with ``manage.py tuning_run``), where the gate's comparison is shown."""

    list_display = ["id", "organization", "status", "step", "total_steps", "promoted", "created_at", "finished_at"]
    list_filter = ["status", "promoted", ("organization", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: TuningRun | None = None) -> list[str]:
        return [f.name for f in TuningRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
