from __future__ import annotations

from typing import Any

from django.db import transaction

from resolvo.organizations.models import Membership, Organization, Widget


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
