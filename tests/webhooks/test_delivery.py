"""Webhook delivery against a real HTTP server on 127.0.0.1: Standard Webhooks signatures checked
with the ``standardwebhooks`` package, retries with backoff, giving up, the address guard, inactive
endpoints, event-type filters, the platform's emitters, and a real Celery worker on the webhooks
queue. Real PostgreSQL and Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from resolvo.conversations import services as conversations
from resolvo.conversations.models import HandoffRule
from resolvo.knowledge import jobs
from resolvo.knowledge import services as knowledge
from resolvo.organizations.models import Organization
from resolvo.webhooks import delivery as deliveries
from resolvo.webhooks.delivery import EndpointRefused, webhook_deliver_run, webhooks_retry_due
from resolvo.webhooks.models import WebhookDelivery, WebhookEndpoint
from resolvo.webhooks.services import endpoint_url_check, event_emit
from tests.webhooks.receiver import Receiver, receive

S = WebhookDelivery.Status
TICKET = {"id": 7, "status": "new", "subject": "Refund, please"}


@pytest.fixture
def org(db: None) -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receive() as r:
        yield r


def endpoint_for(org: Organization, receiver: Receiver, **fields: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(organization=org, url=receiver.url, **fields)


def emit_one(org: Organization, type: str = "ticket.created", data: dict[str, Any] | None = None) -> WebhookDelivery:
    (delivery_id,) = event_emit(organization_id=org.pk, type=type, data=data or TICKET)
    return WebhookDelivery.objects.get(pk=delivery_id)


def make_due(delivery: WebhookDelivery) -> None:
    """Time passes: the scheduled retry is due now."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def verify(endpoint: WebhookEndpoint, request: Any) -> Any:
    return Webhook(endpoint.secret).verify(request.body, request.headers)


def test_a_delivery_is_signed_in_the_standard_webhooks_scheme(org: Organization, receiver: Receiver) -> None:
    endpoint = endpoint_for(org, receiver)
    delivery = emit_one(org, data={**TICKET, "subject": "Ünïcode ✓"})

    outcome = webhook_deliver_run(delivery_id=delivery.pk)

    assert outcome.status == S.DELIVERED
    (request,) = receiver.requests
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == delivery.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    # The package every receiver can use accepts it, and returns the event.
    assert verify(endpoint, request) == delivery.payload
    assert delivery.payload["type"] == "ticket.created" and delivery.payload["data"]["subject"] == "Ünïcode ✓"
    # The raw recipe from docs/webhooks.md gives the same signature; the body is compact JSON.
    key = base64.b64decode(endpoint.secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"
    assert request.body == json.dumps(delivery.payload, separators=(",", ":")).encode()
    # Another endpoint's secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookEndpoint(organization=org, url=receiver.url).secret).verify(request.body, request.headers)

    delivery.refresh_from_db()
    assert delivery.status == S.DELIVERED and delivery.attempts == 1 and delivery.response_status == 200
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None and delivery.error == ""
    # Running it again sends nothing.
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.DELIVERED
    assert len(receiver.requests) == 1


def test_a_failing_endpoint_is_retried_with_backoff_until_it_answers(org: Organization, receiver: Receiver) -> None:
    endpoint = endpoint_for(org, receiver)
    receiver.statuses = [500, 503]
    delivery = emit_one(org)

    before = timezone.now()
    first = webhook_deliver_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert first.status == S.PENDING and first.retry_in is not None and 5 <= first.retry_in <= 6
    assert delivery.attempts == 1 and delivery.response_status == 500
    assert delivery.error == "HTTP 500 Internal Server Error: trouble 500"
    assert delivery.next_attempt_at is not None
    assert before + timedelta(seconds=5) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=6)

    # Not due yet: nothing is sent.
    early = webhook_deliver_run(delivery_id=delivery.pk)
    assert early.status == S.PENDING and early.retry_in is None and len(receiver.requests) == 1

    make_due(delivery)
    second = webhook_deliver_run(delivery_id=delivery.pk)
    assert second.retry_in is not None and 30 <= second.retry_in <= 36  # the next step of the schedule
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.response_status == 503

    make_due(delivery)
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.DELIVERED
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.response_status == 200 and delivery.error == ""
    # Every attempt carries the same id (for the receiver's de-duplication) and its own valid signature.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    assert all(verify(endpoint, r) == delivery.payload for r in receiver.requests)


def test_it_gives_up_after_the_last_attempt(org: Organization, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    endpoint_for(org, receiver)
    receiver.statuses = [500] * 10
    delivery = emit_one(org)
    for attempt in range(1, 4):
        if attempt > 1:
            make_due(delivery)
        outcome = webhook_deliver_run(delivery_id=delivery.pk)
    assert outcome.status == S.FAILED and outcome.retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == S.FAILED and delivery.attempts == 3 and delivery.next_attempt_at is None
    assert delivery.error == "HTTP 500 Internal Server Error: trouble 500 (gave up after 3 attempts)"
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.FAILED
    assert len(receiver.requests) == 3


def test_an_endpoint_that_cannot_be_reached_is_retried(org: Organization, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_TIMEOUT = 0.5
    receiver.delay = 2
    endpoint_for(org, receiver)
    delivery = emit_one(org)
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.PENDING
    delivery.refresh_from_db()
    assert delivery.error == "Timed out after 0.5 s." and delivery.response_status is None

    with socket_closed_port() as url:
        WebhookEndpoint.objects.update(url=url)
        make_due(delivery)
        assert webhook_deliver_run(delivery_id=delivery.pk).status == S.PENDING
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.error.startswith("Could not connect")


def socket_closed_port() -> Any:
    import socket
    from contextlib import contextmanager

    @contextmanager
    def closed() -> Iterator[str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield f"http://127.0.0.1:{port}/hooks"

    return closed()


def test_a_redirect_is_not_followed(org: Organization, receiver: Receiver) -> None:
    endpoint_for(org, receiver)
    receiver.statuses = [301]
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    delivery = emit_one(org)
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.PENDING
    delivery.refresh_from_db()
    assert delivery.response_status == 301 and "redirects are not followed" in delivery.error
    assert len(receiver.requests) == 1


def test_a_private_address_is_refused_at_once(org: Organization, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    endpoint_for(org, receiver)
    delivery = emit_one(org)
    outcome = webhook_deliver_run(delivery_id=delivery.pk)
    assert outcome.status == S.FAILED and outcome.retry_in is None
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.next_attempt_at is None
    assert delivery.error == (
        f"Refused: {receiver.url} points to a private or local network address (127.0.0.1); webhooks are sent only "
        "to public addresses (set WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 to allow internal ones on a trusted network)."
    )
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hooks", "private or local network address (127.0.0.1)"),
        ("http://[::1]/hooks", "private or local network address (::1)"),
        ("http://169.254.169.254/latest/meta-data/", "private or local network address (169.254.169.254)"),
        ("http://10.1.2.3/hooks", "private or local network address (10.1.2.3)"),
        ("http://localhost/hooks", "private or local network address"),
        ("ftp://example.com/hooks", "Only http and https URLs can receive webhooks (got ftp)"),
        ("https://", "no host name"),
    ],
)
def test_the_endpoint_url_check_uses_the_ingestion_guard(settings: Any, url: str, reason: str) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(EndpointRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        endpoint_url_check(url=url)


def test_plain_http_is_allowed_only_when_the_settings_say_so(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(EndpointRefused, match="only to https URLs"):
        endpoint_url_check(url="http://127.0.0.1/hooks")
    endpoint_url_check(url="https://127.0.0.1/hooks")  # private addresses are allowed in the tests' settings


def test_an_inactive_or_deleted_endpoint_is_sent_nothing(org: Organization, receiver: Receiver) -> None:
    endpoint = endpoint_for(org, receiver)
    delivery = emit_one(org)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert webhook_deliver_run(delivery_id=delivery.pk).status == S.FAILED
    delivery.refresh_from_db()
    assert delivery.error == "Not sent: the endpoint was deactivated." and delivery.attempts == 0
    # Events after that are not even recorded for it.
    assert event_emit(organization_id=org.pk, type="ticket.created", data=TICKET) == []

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)
    later = emit_one(org)
    endpoint.delete()
    assert webhook_deliver_run(delivery_id=later.pk).status == "missing"
    assert receiver.requests == []


def test_endpoints_receive_only_the_event_types_they_listen_to(org: Organization, receiver: Receiver) -> None:
    tickets_only = endpoint_for(org, receiver, event_types=["ticket.created", "ticket.updated"])
    everything = endpoint_for(org, receiver)
    other_org = Organization.objects.create(slug="globex", name="Globex")
    endpoint_for(other_org, receiver)

    event_emit(organization_id=org.pk, type="message.created", data={"id": 1})
    event_emit(organization_id=org.pk, type="ticket.created", data=TICKET)

    by_endpoint = {
        e.pk: sorted(WebhookDelivery.objects.filter(endpoint=e).values_list("event_type", flat=True))
        for e in WebhookEndpoint.objects.all()
    }
    assert by_endpoint.pop(tickets_only.pk) == ["ticket.created"]
    assert by_endpoint.pop(everything.pk) == ["message.created", "ticket.created"]
    assert list(by_endpoint.values()) == [[]]  # another organization's endpoint hears nothing
    with pytest.raises(ValueError, match="unknown webhook event type"):
        event_emit(organization_id=org.pk, type="ticket.exploded", data={})


def test_a_handoff_emits_the_ticket_the_handoff_and_the_messages(make_kb: Any, receiver: Receiver) -> None:
    kb = make_kb()
    endpoint = endpoint_for(kb.organization, receiver)
    HandoffRule.objects.create(organization=kb.organization, phrase="refund")
    conversation = conversations.conversation_start(organization=kb.organization, knowledge_bases=[kb], visitor_id="v")

    conversations.message_receive(conversation=conversation, text="I want a refund")

    rows = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk"))
    assert [d.event_type for d in rows] == [
        "message.created",
        "ticket.created",
        "conversation.handed_off",
        "message.created",
    ]
    customer, ticket, handoff, system = (d.payload["data"] for d in rows)
    assert customer["role"] == "customer" and customer["text"] == "I want a refund"
    assert customer["conversation"] == conversation.pk
    assert ticket["conversation"] == conversation.pk and ticket["status"] == "new"
    assert handoff == {"conversation": conversation.pk, "ticket": ticket["id"], "trigger": "rule"}
    assert system["role"] == "system"
    for d in rows:
        assert webhook_deliver_run(delivery_id=d.pk).status == S.DELIVERED
    assert [verify(endpoint, r)["type"] for r in receiver.requests] == [d.event_type for d in rows]


def test_documents_emit_indexed_and_failed(
    make_kb: Any, vector_store: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    kb = make_kb()
    endpoint = endpoint_for(kb.organization, receiver, event_types=["document.indexed", "document.failed"])
    good = knowledge.document_upload(
        knowledge_base=kb, filename="pairing.md", content=b"# Pairing\nHold the switch three times.", enqueue=False
    )
    junk = knowledge.document_upload(
        knowledge_base=kb, filename="junk.txt", content=bytes(range(256)) * 64, enqueue=False
    )

    with django_capture_on_commit_callbacks() as sent:
        outcomes = jobs.documents_ingest_run(document_ids=[good.pk, junk.pk])
    assert {pk: o.status for pk, o in outcomes.items()} == {good.pk: "indexed", junk.pk: "failed"}

    by_type = {d.event_type: d.payload["data"] for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    assert set(by_type) == {"document.indexed", "document.failed"}
    indexed, failed = by_type["document.indexed"], by_type["document.failed"]
    assert indexed["id"] == good.pk and indexed["status"] == "indexed" and indexed["chunk_count"] >= 1
    assert indexed["knowledge_base"] == kb.pk and indexed["title"] and indexed["finished_at"]
    assert failed["id"] == junk.pk and failed["status"] == "failed" and failed["error"]
    # Each delivery goes to the worker once its transaction commits (other callbacks: metrics).
    assert len([c for c in sent if c.__qualname__.startswith("send_on_commit.")]) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_delivery_at_once(receiver: Receiver) -> None:
    org = Organization.objects.create(slug="acme", name="Acme")
    endpoint_for(org, receiver)
    receiver.delay = 0.5
    delivery = emit_one(org)
    outcomes: list[str] = []

    def run() -> None:
        try:
            outcomes.append(webhook_deliver_run(delivery_id=delivery.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == S.DELIVERED and delivery.attempts == 1


# --- through a real worker ---------------------------------------------------------------------------


@pytest.fixture
def webhooks_worker(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker consuming the ``webhooks`` queue from Redis, in this process (as
    ``celery_worker`` in tests/conftest.py does for the ingest queues)."""
    from celery.contrib.testing.worker import start_worker

    from workers.celery import app

    assert not app.conf.task_always_eager, "tests must exercise a real broker"
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=["webhooks"],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


def wait_for_status(delivery_id: int, status: str, timeout: float = 20.0) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        if delivery.status == status:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"delivery {delivery_id} is {delivery.status}, not {status}: {delivery.error}")


def test_the_worker_delivers_after_commit_and_retries_by_itself(
    webhooks_worker: Any, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0.3]
    org = Organization.objects.create(slug="acme", name="Acme")
    endpoint = endpoint_for(org, receiver)
    receiver.statuses = [500, 502]

    with transaction.atomic():
        delivery = emit_one(org)
        time.sleep(0.3)
        assert receiver.requests == []  # nothing leaves before the change is committed

    delivered = wait_for_status(delivery.pk, S.DELIVERED)
    assert delivered.attempts == 3 and delivered.response_status == 200
    assert [verify(endpoint, r)["data"] for r in receiver.requests] == [TICKET] * 3


def test_the_sweeper_sends_what_no_message_will(webhooks_worker: Any, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 3600]
    org = Organization.objects.create(slug="acme", name="Acme")
    endpoint_for(org, receiver)
    now = timezone.now()
    common = {"endpoint": WebhookEndpoint.objects.get(), "event_type": "ticket.created", "payload": {"data": TICKET}}
    # Its worker was killed with the message: due long ago, nobody sent it again.
    lost = WebhookDelivery.objects.create(
        message_id="msg_lost", next_attempt_at=now - timedelta(seconds=deliveries.LOST_MESSAGE_SECONDS + 1), **common
    )
    # An hour-long retry is the sweeper's to send once due.
    hourly = WebhookDelivery.objects.create(message_id="msg_hourly", attempts=2, next_attempt_at=now, **common)
    # Due a moment ago: its own message is on the way, the sweeper leaves it alone.
    queued = WebhookDelivery.objects.create(message_id="msg_queued", next_attempt_at=now, **common)
    # Not due yet.
    WebhookDelivery.objects.create(
        message_id="msg_later", attempts=2, next_attempt_at=now + timedelta(hours=1), **common
    )

    assert webhooks_retry_due() == 2
    wait_for_status(lost.pk, S.DELIVERED)
    wait_for_status(hourly.pk, S.DELIVERED)
    assert sorted(r.headers["webhook-id"] for r in receiver.wait_for(2)) == ["msg_hourly", "msg_lost"]
    assert WebhookDelivery.objects.get(pk=queued.pk).status == S.PENDING
