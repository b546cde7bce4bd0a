"""The admin, scoped to tenants: an organization's owners and admins see and change only their
organization's data, its agents only see it, and only the platform operator (a superuser) sees
every organization. Every model admin of the platform builds on :class:`TenantScopedAdmin`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from resolvo.organizations.models import Membership, Organization, Widget
from resolvo.organizations.selectors import organizations_for_user, organizations_managed_by


class TenantScopedAdmin(admin.ModelAdmin):
    """``tenant_path`` is the lookup from the model to its organization ("" for Organization).

    Staff users who are members see their organizations' rows; members whose role may manage
    knowledge (owner, admin) may also add, change and delete them; everything else is hidden,
    and foreign keys to organizations and knowledge bases offer only the ones the user manages.
    Django's per-model permissions are not used for members: the role decides.
    """

    tenant_path = "organization"
    member_may_change = True

    def _org_lookup(self) -> str:
        return f"{self.tenant_path}__in" if self.tenant_path else "pk__in"

    def _organization_of(self, obj: Model) -> Organization | None:
        if not self.tenant_path:
            return obj if isinstance(obj, Organization) else None
        target: Any = obj
        for part in self.tenant_path.split("__"):
            target = getattr(target, part, None)
        return target if isinstance(target, Organization) else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self._org_lookup(): organizations_for_user(user=request.user)}).distinct()

    def has_module_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff) and (
            user.is_superuser or organizations_for_user(user=user).exists()
        )

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        if not self.has_module_permission(request):
            return False
        if obj is None:
            return True
        organization = self._organization_of(obj)
        return (
            organization is not None and organizations_for_user(user=request.user).filter(pk=organization.pk).exists()
        )

    def _may_manage(self, request: HttpRequest, obj: Model | None) -> bool:
        if not self.member_may_change or not self.has_module_permission(request):
            return False
        managed = organizations_managed_by(user=request.user)
        if obj is None:
            return managed.exists()
        organization = self._organization_of(obj)
        return organization is not None and managed.filter(pk=organization.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_add_permission(request)
        return self._may_manage(request, None)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._may_manage(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            managed = organizations_managed_by(user=request.user)
            if db_field.related_model is Organization:
                kwargs["queryset"] = managed
            elif hasattr(db_field.related_model, "organization"):
                kwargs["queryset"] = db_field.related_model.objects.filter(organization__in=managed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]

    def _operator(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    # Choosing users means seeing every account on the platform: the operator's job for now.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    tenant_path = ""
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)  # new tenants are the operator's to create

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    member_may_change = False  # see MembershipInline: the operator manages accounts
    list_display = ["user", "organization", "role"]
    list_filter = ["role", ("organization", admin.RelatedOnlyFieldListFilter)]
    autocomplete_fields = ["user", "organization"]


@admin.register(Widget)
class WidgetAdmin(TenantScopedAdmin):
    list_display = ["name", "organization", "public_key", "identity", "active"]
    list_filter = ["active", "identity", ("organization", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["public_key", "key_rotated_at", "embed_snippet"]
    filter_horizontal = ["knowledge_bases"]
    actions = ["rotate_key"]
    fieldsets = [
        (None, {"fields": ["organization", "name", "active", "public_key", "key_rotated_at", "embed_snippet"]}),
        ("Where it runs and what it answers from", {"fields": ["allowed_origins", "knowledge_bases"]}),
        ("Look", {"fields": ["greeting", "colour", "position", "launcher_text"]}),
        ("Visitor identity", {"fields": ["identity", "identity_secret"]}),
    ]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "knowledge_bases" and not request.user.is_superuser:
            from resolvo.knowledge.models import KnowledgeBase

            kwargs["queryset"] = KnowledgeBase.objects.filter(
                organization__in=organizations_managed_by(user=request.user)
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Embed on your site")
    def embed_snippet(self, obj: Widget) -> str:
        if not obj.pk:
            return "Save the widget to get its snippet."
        return (
            f'<script src="https://YOUR-RESOLVO-HOST/widget/v1/resolvo.js" data-key="{obj.public_key}" async></script>'
        )

    @admin.action(description="Rotate the public key (the old key stops working)", permissions=["change"])
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Widget]) -> None:
        from django.contrib import messages

        from resolvo.organizations.services import widget_rotate_key

        for widget in queryset:
            widget_rotate_key(widget=widget)
        messages.success(request, f"{queryset.count()} key(s) rotated; update the snippet on your site.")
