"""The webhooks admin: the endpoint URL checked by the delivery's address guard at save, the secret
shown to those who manage the endpoint only, rotate and test actions, and the read-only delivery log."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from resolvo.organizations.models import Membership, Organization
from resolvo.webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
ADD = "/admin/webhooks/webhookendpoint/add/"


@pytest.fixture
def org() -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


def member(org: Organization, role: str) -> Client:
    user = get_user_model().objects.create_user(f"{role}-user", password="pw", is_staff=True)
    Membership.objects.create(organization=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def form(org: Organization, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "organization": org.pk,
        "url": url,
        "description": "CRM",
        "event_types": ["ticket.created"],
        "active": "on",
        "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0",
        **extra,
    }


def test_a_private_address_is_refused_with_a_clear_form_error(org: Organization, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    admin = member(org, Membership.Role.ADMIN)
    response = admin.post(ADD, form(org, "https://169.254.169.254/latest/"))
    assert response.status_code == 200
    assert "points to a private or local network address (169.254.169.254)" in response.content.decode()
    settings.WEBHOOK_ALLOW_HTTP = False
    response = admin.post(ADD, form(org, "http://example.com/hooks"))
    assert "Webhooks are sent only to https URLs" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_adds_an_endpoint_rotates_its_secret_and_sends_a_test_event(org: Organization) -> None:
    admin = member(org, Membership.Role.ADMIN)
    response = admin.post(ADD, form(org, "http://127.0.0.1:9/hooks"))  # the tests' settings allow both
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["ticket.created"] and endpoint.secret.startswith("whsec_")
    page = admin.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret in page

    old = endpoint.secret
    changelist = "/admin/webhooks/webhookendpoint/"
    admin.post(changelist, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")

    admin.post(changelist, {"action": "send_test_event", "_selected_action": [endpoint.pk]})
    test = WebhookDelivery.objects.get(endpoint=endpoint)
    assert test.event_type == "webhook.test" and test.payload["data"]["endpoint"] == endpoint.pk


def test_agents_see_the_delivery_log_but_not_the_secret(org: Organization) -> None:
    endpoint = WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/in")
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="ticket.created",
        message_id="msg_1",
        payload={},
        status="failed",
        error="HTTP 500",
    )
    other = WebhookEndpoint.objects.create(
        organization=Organization.objects.create(slug="globex", name="Globex"), url="https://globex.example.com/in"
    )
    WebhookDelivery.objects.create(endpoint=other, event_type="ticket.created", message_id="msg_2", payload={})
    agent = member(org, Membership.Role.AGENT)

    page = agent.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.secret not in page.content.decode()

    log = agent.get("/admin/webhooks/webhookdelivery/?status__exact=failed&event_type=ticket.created")
    assert log.status_code == 200
    text = log.content.decode()
    assert "hooks.example.com" in text and "HTTP 500" in text and "globex" not in text
    delivery = WebhookDelivery.objects.get(message_id="msg_1")
    detail = agent.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert 'name="_save"' not in detail  # read-only
