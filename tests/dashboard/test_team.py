"""The team: invitations (no open sign-up), roles, availability, personal API tokens."""

from __future__ import annotations

import hashlib
import re

from django.contrib.auth import get_user_model
from django.test import Client

from resolvo.organizations.models import ApiToken, Invitation, Membership
from tests.dashboard.conftest import Desk, _desk


def test_an_admin_invites_and_the_invitee_joins_once(make_kb: object) -> None:
    admin = _desk(make_kb, "acme", "ada", role=Membership.Role.ADMIN)  # type: ignore[arg-type]
    response = admin.client.post("/app/team/", {"email": "New.Agent@Example.com", "role": "agent"}, follow=True)
    link = re.search(r"/app/invitations/([\w-]+)/", response.content.decode())
    assert link is not None
    invitation = Invitation.objects.get()
    assert invitation.email == "new.agent@example.com"
    assert invitation.token_hash == hashlib.sha256(link.group(1).encode()).hexdigest()  # only the hash is kept
    visitor = Client()
    weak = visitor.post(link.group(0), {"username": "newbie", "password": "123"})
    assert "too short" in weak.content.decode() or "too common" in weak.content.decode()
    joined = visitor.post(
        link.group(0), {"username": "newbie", "password": "a-long-passphrase-42", "name": "New Agent"}
    )
    assert joined.status_code == 302 and joined["Location"] == "/app/inbox/"
    member = Membership.objects.get(user__username="newbie")
    assert member.organization == admin.kb.organization and member.role == "agent"
    assert not member.user.is_staff  # agents work tickets in the dashboard, not the admin
    assert visitor.get("/app/inbox/").status_code == 200  # signed in
    again = Client().post(link.group(0), {"username": "other", "password": "a-long-passphrase-42"})
    assert again.status_code == 404 and not get_user_model().objects.filter(username="other").exists()


def test_agents_cannot_invite_or_change_roles_and_the_last_owner_stays(desk: Desk, make_kb: object) -> None:
    refused = desk.client.post("/app/team/", {"email": "x@example.com", "role": "admin"}, follow=True)
    assert "owners and admins manage its team" in refused.content.decode()
    assert not Invitation.objects.exists()
    mine = Membership.objects.get(user=desk.agent)
    desk.client.post(f"/app/team/{mine.pk}/", {"role": "owner"})
    assert Membership.objects.get(pk=mine.pk).role == "agent"
    # An agent may go away (no round-robin tickets) and come back.
    desk.client.post(f"/app/team/{mine.pk}/", {"available": "0"})
    assert Membership.objects.get(pk=mine.pk).available is False
    owner = _desk(make_kb, "acme", "olga", role=Membership.Role.OWNER)  # type: ignore[arg-type]
    only = Membership.objects.get(user=owner.agent)
    response = owner.client.post(f"/app/team/{only.pk}/", {"role": "agent"}, follow=True)
    assert "at least one owner" in response.content.decode()
    owner.client.post(f"/app/team/{mine.pk}/", {"role": "admin"})
    promoted = Membership.objects.select_related("user").get(pk=mine.pk)
    assert promoted.role == "admin" and promoted.user.is_staff  # admins manage knowledge in the admin


def test_team_urls_of_another_organization_answer_404(desk: Desk, other_desk: Desk) -> None:
    theirs = Membership.objects.get(user=other_desk.agent)
    assert desk.client.post(f"/app/team/{theirs.pk}/", {"available": "0"}).status_code == 404
    assert Membership.objects.get(pk=theirs.pk).available is True


def test_a_personal_api_token_is_shown_once_and_can_be_revoked(desk: Desk) -> None:
    page = desk.client.post("/app/tokens/", {"name": "CRM <sync>"}).content.decode()
    raw = re.search(r"data-new-token>(rsv_[\w-]+)<", page)
    assert raw is not None and "CRM &lt;sync&gt;" in page
    token = ApiToken.objects.get()
    assert token.token_hash == hashlib.sha256(raw.group(1).encode()).hexdigest()
    assert raw.group(1) not in desk.client.get("/app/tokens/").content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw.group(1)}")
    assert api.get("/api/v1/tickets").status_code == 200
    desk.client.post("/app/tokens/", {"revoke": token.pk})
    assert api.get("/api/v1/tickets").status_code == 401
