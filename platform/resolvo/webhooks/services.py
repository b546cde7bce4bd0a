"""Writes for webhooks: recording an event for every endpoint that wants it, to be delivered.

``event_emit`` is what the rest of the platform calls; it only writes delivery rows and sends
their ids to the worker after commit, so an event is recorded exactly when the change it
describes is, and a slow endpoint never slows the request that caused it. Sending is
:mod:`resolvo.webhooks.delivery`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from ingestion.types import TransientError
from resolvo import background
from resolvo.webhooks.delivery import EndpointRefused, endpoint_url_vet
from resolvo.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, _secret

# Sent only by endpoint_test_send, to one endpoint, whatever event types it listens to.
TEST_EVENT_TYPE = "webhook.test"


def event_emit(*, organization_id: int, type: str, data: dict[str, Any]) -> list[int]:
    """Queue ``type`` with ``data`` for each of the organization's active endpoints that listens
    to it; the ids of the deliveries created. Call inside the transaction of the change."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    active = WebhookEndpoint.objects.filter(organization_id=organization_id, active=True)
    return [_delivery_create(endpoint=e, type=type, data=data) for e in active if e.wants(type)]


def endpoint_test_send(*, endpoint: WebhookEndpoint) -> int:
    """Queue a ``webhook.test`` event for ``endpoint`` alone; the delivery's id. The endpoint
    must be active (a delivery to an inactive one is never sent)."""
    if not endpoint.active:
        raise ValueError("The endpoint is inactive; activate it to send it a test event.")
    return _delivery_create(
        endpoint=endpoint,
        type=TEST_EVENT_TYPE,
        data={"endpoint": endpoint.pk, "message": "A test event from Resolvo: your endpoint receives webhooks."},
    )


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new signing secret; the new secret. Deliveries sent from now on,
    retries of older events included, are signed with it."""
    endpoint.secret = _secret()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=endpoint.secret)
    return endpoint.secret


def endpoint_url_check(*, url: str) -> None:
    """Raise :class:`EndpointRefused` with a readable reason when webhooks may not be sent to
    ``url`` (the same guard the delivery applies on every attempt; see
    :func:`resolvo.webhooks.delivery.endpoint_url_vet`). A host name that does not resolve is
    refused too: it would fail every delivery."""
    try:
        endpoint_url_vet(url)
    except TransientError as exc:
        raise EndpointRefused(str(exc)) from exc


def _delivery_create(*, endpoint: WebhookEndpoint, type: str, data: dict[str, Any]) -> int:
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type=type,
        message_id=f"msg_{uuid.uuid4().hex}",
        payload={"type": type, "timestamp": now.isoformat(), "data": data},
        next_attempt_at=now,
    )
    background.send_on_commit(background.WEBHOOK_DELIVER, delivery.pk)
    return delivery.pk
