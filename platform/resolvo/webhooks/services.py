"""Writes for webhooks: recording an event for every endpoint that wants it, to be delivered.

``event_emit`` is what the rest of the platform calls; it only writes delivery rows and sends
their ids to the worker after commit, so an event is recorded exactly when the change it
describes is, and a slow endpoint never slows the request that caused it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from resolvo import background
from resolvo.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint


def event_emit(*, organization_id: int, type: str, data: dict[str, Any]) -> list[int]:
    """Queue ``type`` with ``data`` for each of the organization's active endpoints that listens
    to it; the ids of the deliveries created. Call inside the transaction of the change."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    active = WebhookEndpoint.objects.filter(organization_id=organization_id, active=True)
    endpoints = [e for e in active if e.wants(type)]
    created = []
    for endpoint in endpoints:
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type=type,
            message_id=f"msg_{uuid.uuid4().hex}",
            payload={"type": type, "timestamp": timezone.now().isoformat(), "data": data},
            next_attempt_at=timezone.now(),
        )
        background.send_on_commit(background.WEBHOOK_DELIVER, delivery.pk)
        created.append(delivery.pk)
    return created
