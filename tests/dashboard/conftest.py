from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from resolvo.conversations import services as conversations
from resolvo.organizations.models import Membership
from resolvo.organizations.services import membership_set


@dataclass
class Desk:
    kb: Any
    agent: Any
    client: Client

    def handoff(self, text: str, *, visitor: str = "v1", then: tuple[str, ...] = ()) -> Any:
        """A customer asks, then asks for a person: the ticket an agent finds in the inbox."""
        conversation = conversations.conversation_start(
            organization=self.kb.organization, knowledge_bases=[self.kb], visitor_id=visitor
        )
        conversations.message_receive(conversation=conversation, text=text)
        ticket = conversations.conversation_handoff(conversation=conversation, trigger="customer_asked")
        for more in then:
            conversations.message_receive(conversation=conversation, text=more)
        ticket.refresh_from_db()
        return ticket


def _desk(make_kb: Any, org: str, username: str, role: str = Membership.Role.AGENT) -> Desk:
    kb = make_kb(org)
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", first_name=username.title())
    membership_set(organization=kb.organization, user=user, role=role)
    client = Client()
    client.force_login(user)
    return Desk(kb=kb, agent=user, client=client)


@pytest.fixture
def desk(make_kb: Any) -> Desk:
    return _desk(make_kb, "acme", "sam")


@pytest.fixture
def other_desk(make_kb: Any) -> Desk:
    return _desk(make_kb, "globex", "eve")
