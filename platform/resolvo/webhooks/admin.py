"""Webhook endpoints (URL checked by the delivery's own address guard, secret shown, rotate and
test actions) and the read-only delivery log. Actions call :mod:`resolvo.webhooks.services`."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from resolvo.organizations.admin import TenantScopedAdmin
from resolvo.webhooks import services
from resolvo.webhooks.delivery import EndpointRefused
from resolvo.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "active"]

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        try:
            services.endpoint_url_check(url=url)
        except EndpointRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = readonly_fields = ("created_at", "event_type", "status", "attempts", "response_status", "next_attempt_at")
    ordering = ["-created_at"]
    extra = 0
    max_num = 0
    show_change_link = True
    can_delete = False
    verbose_name_plural = "recent deliveries (the full log is under Webhook deliveries)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        # The newest few; Django's inline formset cannot slice, so limit by id.
        queryset = super().get_queryset(request)
        recent = list(queryset.order_by("-created_at").values_list("pk", flat=True)[:20])
        return queryset.filter(pk__in=recent)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may see the endpoint (TenantScopedAdmin) sees its deliveries


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "organization", "active", "listens_to", "created_at"]
    list_filter = ["active", ("organization", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organization"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret", "created_at"]
    fields = ["organization", "url", "description", "event_types", "active", "secret", "created_at"]
    inlines = [DeliveryInline]
    actions = ["rotate_secret", "send_test_event"]

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return [f for f in fields if f != "secret"]  # agents may look at endpoints, not sign as Resolvo
        return fields

    @admin.display(description="Events")
    def listens_to(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.action(description="Rotate the signing secret (the old one stops verifying)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_secret_rotate(endpoint=endpoint)
        messages.success(request, f"{len(queryset)} secret(s) rotated; give your receivers the new one.")

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        sent = 0
        for endpoint in queryset:
            try:
                services.endpoint_test_send(endpoint=endpoint)
                sent += 1
            except ValueError as exc:
                messages.warning(request, f"{endpoint}: {exc}")
        if sent:
            messages.success(request, f"A test event was queued for {sent} endpoint(s); see Webhook deliveries.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    """The delivery log: read-only; deliveries are written by the platform only."""

    tenant_path = "endpoint__organization"
    member_may_change = False
    list_display = [
        "created_at",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event_type", ("endpoint", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["endpoint"]
    search_fields = ["message_id", "endpoint__url"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "endpoint",
        "event_type",
        "message_id",
        "status",
        "attempts",
        "next_attempt_at",
        "response_status",
        "error",
        "created_at",
        "delivered_at",
        "payload_pretty",
    )

    @admin.display(description="Last error")
    def last_error(self, obj: WebhookDelivery) -> str:
        return obj.error if len(obj.error) <= 80 else obj.error[:79] + "…"

    @admin.display(description="Payload")
    def payload_pretty(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)
