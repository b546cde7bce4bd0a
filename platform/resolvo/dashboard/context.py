"""Which organization a dashboard request works in: the member's chosen one (kept in the
session; a switcher appears for people in several), checked against their memberships on every
request."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from resolvo.organizations.models import Membership, Organization

SESSION_KEY = "desk_organization"


@dataclass(frozen=True)
class Desk:
    organization: Organization
    membership: Membership
    memberships: list[Membership]

    @property
    def can_manage(self) -> bool:
        return self.membership.can_manage_knowledge


def desk_for(request: HttpRequest, *, organization: Organization | None = None) -> Desk:
    """The member's desk; ``organization`` (a ticket's, already checked) switches to it.
    PermissionDenied for someone who is a member of no organization."""
    memberships = list(
        Membership.objects.filter(user_id=request.user.pk or 0)
        .select_related("organization")
        .order_by("organization__name")
    )
    if not memberships:
        raise PermissionDenied("Your account is not a member of any organization. Ask an admin to invite you.")
    wanted = organization.pk if organization is not None else request.session.get(SESSION_KEY)
    current = next((m for m in memberships if m.organization_id == wanted), memberships[0])
    if request.session.get(SESSION_KEY) != current.organization_id:
        request.session[SESSION_KEY] = current.organization_id
    return Desk(organization=current.organization, membership=current, memberships=memberships)
