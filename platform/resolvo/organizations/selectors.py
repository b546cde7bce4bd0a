"""The tenant gate: every adapter (admin, commands, API, dashboard) gets its organization here.

Each function answers "which organization may this caller act in?" and raises
:class:`OrganizationNotFound` (a readable message, never another tenant's data) otherwise. Later
doors (API keys, widget keys) add their own function here, so there is one place to read when
checking how a request is bound to a tenant.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from resolvo.organizations.models import ApiToken, Membership, Organization, Widget


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


# --- personal API tokens: the REST API's door ------------------------------------------------------

API_TOKEN_TOUCH_SECONDS = 60
"""``last_used_at`` is written at most this often per token (not one UPDATE per request)."""


def membership_for_api_token(*, raw: str) -> Membership | None:
    """The membership an API token acts as, or None for an unknown, revoked or malformed token
    (or one whose member was deactivated). The token's organization and role are the member's.

    Looked up by the token's SHA-256 (a unique index), so the time taken does not depend on how
    much of a guessed token is right; ``last_used_at`` is kept to the minute."""
    import hmac
    from datetime import timedelta

    from django.utils import timezone

    from resolvo.organizations.services import API_TOKEN_PREFIX, api_token_hash

    if not raw or len(raw) > 200 or not raw.startswith(API_TOKEN_PREFIX):
        return None
    digest = api_token_hash(raw)
    token = (
        ApiToken.objects.select_related("membership__organization", "membership__user")
        .filter(token_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    membership = token.membership
    if not membership.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - timedelta(seconds=API_TOKEN_TOUCH_SECONDS):
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(seconds=API_TOKEN_TOUCH_SECONDS))
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    return membership


def api_tokens_of(*, membership: Membership) -> QuerySet[ApiToken]:
    """A member's tokens, newest first (revoked ones too, marked)."""
    return ApiToken.objects.filter(membership=membership).order_by("-created_at", "-pk")


def api_token_in_organization(*, organization: Organization, token_id: int) -> ApiToken | None:
    """Token ``token_id`` of one of ``organization``'s members, or None (another tenant's too)."""
    return ApiToken.objects.filter(pk=token_id, membership__organization=organization).first()
