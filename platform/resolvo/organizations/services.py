from __future__ import annotations

from typing import Any

from django.db import transaction

from resolvo.organizations.models import Membership, Organization


def organization_create(*, name: str, slug: str) -> Organization:
    return Organization.objects.create(name=name, slug=slug)


@transaction.atomic
def membership_set(*, organization: Organization, user: Any, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    return membership
