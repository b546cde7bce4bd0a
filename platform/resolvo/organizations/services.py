from __future__ import annotations

from typing import Any

from django.db import transaction

from resolvo.organizations.models import ApiToken, Membership, Organization, Widget


def organization_create(*, name: str, slug: str) -> Organization:
    return Organization.objects.create(name=name, slug=slug)


def organization_ensure(*, slug: str, name: str = "") -> Organization:
    """The organization ``slug``, created (named ``name`` or the slug) if it does not exist."""
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return organization


@transaction.atomic
def membership_set(*, organization: Organization, user: Any, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def widget_rotate_key(*, widget: Widget) -> Widget:
    """A new public key for ``widget``; the old key, and every visitor token made with it, stop
    working at once (visitors boot again with the new key the host page carries)."""
    from django.utils import timezone

    from resolvo.organizations.models import _public_key

    widget.public_key = _public_key()
    widget.key_rotated_at = timezone.now()
    widget.save(update_fields=["public_key", "key_rotated_at"])
    return widget


# --- personal API tokens ---------------------------------------------------------------------------

API_TOKEN_PREFIX = "rsv_"  # noqa: S105 (a marker, not a secret)


class ApiTokenRefused(PermissionError):
    """The caller may not do this to the token; the message says why."""


def api_token_hash(raw: str) -> str:
    """What is stored of a token: its SHA-256, hex. The token itself is never stored."""
    import hashlib

    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def api_token_create(*, membership: Membership, name: str) -> tuple[ApiToken, str]:
    """A new personal API token acting as ``membership`` (its organization, its role).

    Returns the row and the token in plain text: show it once, it cannot be read back (only its
    SHA-256 and its first 12 characters, to recognise it in a list, are stored)."""
    import secrets

    name = " ".join((name or "").split())[:100] or "API token"
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(membership=membership, name=name, prefix=raw[:12], token_hash=api_token_hash(raw))
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: Any) -> ApiToken:
    """Revoke ``token`` at once (its next request answers 401). Its owner may, and the owners and
    admins of its organization; revoking twice keeps the first time."""
    from django.utils import timezone

    locked = ApiToken.objects.select_for_update().select_related("membership").get(pk=token.pk)
    own = locked.membership.user_id == getattr(by, "pk", None)
    manager = Membership.objects.filter(
        organization_id=locked.membership.organization_id,
        user=by,
        role__in=[Membership.Role.OWNER, Membership.Role.ADMIN],
    ).exists()
    if not (own or manager or getattr(by, "is_superuser", False)):
        raise ApiTokenRefused("Only the token's owner or an admin of its organization can revoke it.")
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
    return locked


# --- the team: invitations, roles, availability --------------------------------------------------

INVITATION_DAYS = 7


class TeamRefused(PermissionError):
    """The change to the team cannot be made; the message says why, for the person asking."""


def _manager(organization: Organization, user: Any) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None or not membership.can_manage_knowledge:
        raise TeamRefused("Only the organization's owners and admins manage its team.")
    return membership


@transaction.atomic
def invitation_create(*, organization: Organization, email: str, role: str, by: Any) -> tuple[Any, str]:
    """Invite ``email`` to join as ``role`` (there is no open sign-up). Returns the invitation and
    its secret token, for the link (only its SHA-256 is stored; a new invitation to the same
    address replaces an open one). Only an owner makes owners."""
    import secrets
    from datetime import timedelta

    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email
    from django.utils import timezone

    from resolvo.organizations.models import Invitation

    inviter = _manager(organization, by)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamRefused(f"{email!r} is not an email address.") from None
    if role not in Membership.Role.values:
        raise TeamRefused(f"Unknown role {role!r}.")
    if role == Membership.Role.OWNER and inviter.role != Membership.Role.OWNER:
        raise TeamRefused("Only an owner can invite another owner.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise TeamRefused(f"{email} is already a member.")
    Invitation.objects.filter(organization=organization, email=email, accepted_at__isnull=True).delete()
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=api_token_hash(raw),
        invited_by=by,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    return invitation, raw


def invitation_for_token(*, raw: str) -> Any:
    """The open, unexpired invitation a link's token names, or None."""
    from django.utils import timezone

    from resolvo.organizations.models import Invitation

    return (
        Invitation.objects.select_related("organization")
        .filter(token_hash=api_token_hash(raw or ""), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def invitation_accept(*, raw: str, username: str, password: str, name: str = "") -> Membership:
    """Create the invited person's account and membership. Django's password validators apply;
    the link works once."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from resolvo.organizations.models import Invitation

    invitation = invitation_for_token(raw=raw)
    if invitation is None:
        raise TeamRefused("This invitation has expired or was already used. Ask for a new one.")
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    User = get_user_model()
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise TeamRefused("Choose a username (up to 150 characters).")
    if User.objects.filter(username__iexact=username).exists():
        raise TeamRefused(f"The username {username!r} is taken.")
    first, _, last = " ".join((name or "").split()).partition(" ")
    user = User(username=username, email=invitation.email, first_name=first[:150], last_name=last[:150])
    # Owners and admins manage knowledge and settings in the admin, which needs staff status
    # (what they see there is still only their organization's: TenantScopedAdmin).
    user.is_staff = invitation.role in (Membership.Role.OWNER, Membership.Role.ADMIN)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise TeamRefused(" ".join(exc.messages)) from None
    user.set_password(password)
    user.save()
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return Membership.objects.create(organization=invitation.organization, user=user, role=invitation.role)


@transaction.atomic
def membership_change(
    *, membership: Membership, by: Any, role: str | None = None, available: bool | None = None
) -> Membership:
    """Change a member's role (owners and admins; only owners touch owners; the last owner stays)
    or availability for round-robin assignment (the member themself, or a manager)."""
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    self_service = locked.user_id == getattr(by, "pk", None)
    if role is not None and role != locked.role:
        manager = _manager(locked.organization, by)
        if role not in Membership.Role.values:
            raise TeamRefused(f"Unknown role {role!r}.")
        if Membership.Role.OWNER in (role, locked.role) and manager.role != Membership.Role.OWNER:
            raise TeamRefused("Only an owner can make or unmake an owner.")
        if locked.role == Membership.Role.OWNER and _last_owner(locked):
            raise TeamRefused("The organization needs at least one owner.")
        locked.role = role
        if role in (Membership.Role.OWNER, Membership.Role.ADMIN) and not locked.user.is_staff:
            type(locked.user).objects.filter(pk=locked.user_id).update(is_staff=True)
    if available is not None:
        if not self_service:
            _manager(locked.organization, by)
        locked.available = available
    locked.save(update_fields=["role", "available"])
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, by: Any) -> None:
    """Remove a member (their tickets become unassigned); never the last owner."""
    from resolvo.tickets.models import Ticket

    manager = _manager(membership.organization, by)
    if membership.role == Membership.Role.OWNER and manager.role != Membership.Role.OWNER:
        raise TeamRefused("Only an owner can remove an owner.")
    if membership.role == Membership.Role.OWNER and _last_owner(membership):
        raise TeamRefused("The organization needs at least one owner.")
    Ticket.objects.filter(organization=membership.organization, assignee=membership.user).update(assignee=None)
    membership.delete()


def _last_owner(membership: Membership) -> bool:
    owners = Membership.objects.filter(organization_id=membership.organization_id, role=Membership.Role.OWNER)
    return owners.exclude(pk=membership.pk).count() == 0
