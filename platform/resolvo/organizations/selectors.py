"""The tenant gate: every adapter (admin, commands, API, dashboard) gets its organization here.

Each function answers "which organization may this caller act in?" and raises
:class:`OrganizationNotFound` (a readable message, never another tenant's data) otherwise. Later
doors (API keys, widget keys) add their own function here, so there is one place to read when
checking how a request is bound to a tenant.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from resolvo.organizations.models import Membership, Organization, Widget


class OrganizationNotFound(LookupError):
    """No such organization for this caller; the message can be shown to them."""


def organization_get(*, slug: str) -> Organization:
    """The organization with ``slug``, for trusted operator tools (management commands)."""
    found = Organization.objects.filter(slug=slug).first()
    if found is None:
        raise OrganizationNotFound(f"No organization with slug {slug!r}.")
    return found


def organizations_for_user(*, user: Any) -> QuerySet[Organization]:
    """The organizations ``user`` works in (all of them for the platform operator)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def organizations_managed_by(*, user: Any) -> QuerySet[Organization]:
    """The organizations whose knowledge ``user`` may manage (owner or admin; all for the operator)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    roles = [role for role in Membership.Role if Membership(role=role).can_manage_knowledge]
    return Organization.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


def membership_get(*, user: Any, organization: Organization) -> Membership | None:
    """``user``'s membership of ``organization``, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def organization_for_member(*, user: Any, slug: str) -> Organization:
    """The organization ``slug`` if ``user`` is a member of it (or the platform operator).

    The same error for "does not exist" and "not yours", so a caller cannot probe for other
    tenants' slugs.
    """
    found = organizations_for_user(user=user).filter(slug=slug).first()
    if found is None:
        raise OrganizationNotFound(f"No organization with slug {slug!r}.")
    return found


class WidgetRefused(PermissionError):
    """The widget key, the page's origin or the visitor's identity is not accepted."""


def widget_for_key(*, key: str) -> Widget:
    """The active widget with public key ``key`` (the tenant gate for the public widget API)."""
    found = Widget.objects.select_related("organization").filter(public_key=key, active=True).first() if key else None
    if found is None:
        raise WidgetRefused("Unknown or disabled widget key.")
    return found


def widget_origin_check(*, widget: Widget, origin: str | None) -> None:
    """Refuse a request whose ``Origin`` is not one of the widget's allowed origins."""
    if not origin or origin.rstrip("/").lower() not in widget.origins:
        raise WidgetRefused(f"This widget is not allowed on {origin or 'a page without an origin'}.")


def origin_allowed_anywhere(*, origin: str) -> bool:
    """True when some active widget allows ``origin`` (answers CORS preflights, which carry no key)."""
    wanted = origin.rstrip("/").lower()
    return any(wanted in w.origins for w in Widget.objects.filter(active=True, allowed_origins__icontains=wanted))
