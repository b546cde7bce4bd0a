from __future__ import annotations

from typing import Any

from django.db import transaction

from resolvo.organizations.models import Membership, Organization


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
