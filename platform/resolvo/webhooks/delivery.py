"""Delivering webhook events: the delivery row is the job (STYLE 6), claimed, signed, sent, recorded.

One run of :func:`webhook_deliver_run` makes at most one attempt:

* **claim**: a conditional update takes a pending delivery that is due, counts the attempt and
  moves ``next_attempt_at`` past the send's time limit (a lease), so two workers never send the
  same delivery at once, and a worker that dies mid-send leaves a row the sweeper finds again;
* **sign** in the Standard Webhooks scheme: ``webhook-id`` (the delivery's message id, the same
  on every attempt, for the receiver's de-duplication), ``webhook-timestamp`` (this attempt's
  time) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed by
  the endpoint's secret without its ``whsec_`` prefix, base64-decoded;
* **send** through URL ingestion's guarded transport (:mod:`ingestion.parse.fetch`): the host is
  resolved once, refused when any address is loopback, private, link-local or otherwise not
  public (unless ``WEBHOOK_ALLOW_PRIVATE_NETWORKS``), and the request connects to exactly the
  address checked; redirects are never followed (a 3xx is a failed attempt);
* **record**: a 2xx answer delivers; anything else schedules the next attempt after the
  ``WEBHOOK_RETRY_SCHEDULE`` delay for this attempt plus up to 20 % jitter, until
  ``WEBHOOK_MAX_ATTEMPTS`` attempts have failed. A refused address or URL fails at once: trying
  again would not change it.

The task (``workers/tasks.py``) sends itself again for retries due within
``COUNTDOWN_MAX_SECONDS``; later ones, and any message lost with a worker, are picked up by
:func:`webhooks_retry_due`, which beat runs every ``WEBHOOK_SWEEP_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from ingestion.parse.fetch import _PINNED_ADDRESS, PinnedClient, _checked_url, _pinned_address
from ingestion.types import IngestionError, TransientError
from resolvo import background
from resolvo.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

USER_AGENT = "Resolvo-Webhooks/1.0"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
# A retry due within this long is sent by the task itself with a countdown; a later one is left
# to the sweeper (the Redis broker redelivers a message held longer than its visibility timeout).
COUNTDOWN_MAX_SECONDS = 600.0
# A delivery still due this long after its time lost its message (its worker was killed): the
# sweeper sends it again.
LOST_MESSAGE_SECONDS = 300.0
# The lease a claim takes on top of the send's own time limit.
LEASE_MARGIN_SECONDS = 30.0
# How much of an endpoint's answer is kept in the delivery log.
RESPONSE_EXCERPT_BYTES = 500

Status = WebhookDelivery.Status


class EndpointRefused(ValueError):
    """The endpoint's URL may not be sent to (bad URL, plain http when not allowed, or an internal
    address); permanent, the message says why in plain words."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one run did: the delivery's status afterwards, and for a pending one when the next
    attempt is due (seconds from now), or None when this run made no attempt."""

    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class _Answer:
    status_code: int | None
    error: str
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,`` and the base64 HMAC-SHA256 of
    ``"{message_id}.{timestamp}.{body}"`` keyed by the decoded secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def body_of(payload: object) -> str:
    """The request body: compact JSON, ASCII only (what the signature covers, byte for byte)."""
    return json.dumps(payload, separators=(",", ":"))


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first), before jitter."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    return float(schedule[min(attempt, len(schedule)) - 1])


def endpoint_url_vet(url: str) -> tuple[httpx.URL, str]:
    """Check ``url`` as a webhook target and resolve it once: ``(url, address to connect to)``.

    Raises :class:`EndpointRefused` for what no retry can change (not an http(s) URL, plain http
    while ``WEBHOOK_ALLOW_HTTP`` is off, a host that is or resolves to a non-public address while
    ``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is off) and :class:`TransientError` when the name does
    not resolve. The guard is URL ingestion's own (``ingestion.parse.fetch``)."""
    try:
        target = _checked_url(url)
    except IngestionError as exc:
        raise EndpointRefused(str(exc).replace("can be fetched", "can receive webhooks")) from exc
    if target.scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP:
        raise EndpointRefused(
            f"Webhooks are sent only to https URLs: {url} (set WEBHOOK_ALLOW_HTTP=1 to allow plain http)."
        )
    try:
        address = _pinned_address(target, url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    except IngestionError as exc:
        found = str(exc).split(";", 1)[0]
        raise EndpointRefused(
            f"{found}; webhooks are sent only to public addresses "
            "(set WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 to allow internal ones on a trusted network)."
        ) from exc
    return target, address


def webhook_deliver_run(*, delivery_id: int) -> DeliveryOutcome:
    """Make one attempt at the delivery if it is pending and due; record what happened.

    Safe to run twice or at once from two workers: only the run whose claim succeeds sends. A
    delivery whose endpoint was deactivated fails without being sent; a deleted endpoint took
    its deliveries with it."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return DeliveryOutcome("missing")
    if delivery.status != Status.PENDING:
        return DeliveryOutcome(delivery.status)
    if not delivery.endpoint.active:
        _pending(delivery_id).update(
            status=Status.FAILED, next_attempt_at=None, error="Not sent: the endpoint was deactivated."
        )
        return DeliveryOutcome(Status.FAILED)
    attempt = _claim(delivery)
    if attempt is None:
        return DeliveryOutcome(_status_of(delivery_id))
    try:
        answer = _send(delivery.endpoint, delivery)
    except Exception as exc:
        log.exception("sending webhook delivery %s failed", delivery_id)
        answer = _Answer(None, f"Internal error while sending ({type(exc).__name__}: {exc}).")
    return _record(delivery, attempt, answer)


def webhooks_retry_due(*, limit: int = 1000) -> int:
    """Send the pending deliveries nobody will send otherwise; how many. Run by beat every
    ``WEBHOOK_SWEEP_SECONDS``.

    Two kinds: retries scheduled further ahead than ``COUNTDOWN_MAX_SECONDS`` (the task left them
    to this sweep) once they are due, and any delivery still due ``LOST_MESSAGE_SECONDS`` after
    its time (its message was lost with a worker). Sending one twice is harmless: the claim
    lets one run through."""
    now = timezone.now()
    lost = now - timedelta(seconds=LOST_MESSAGE_SECONDS)
    due = Q(next_attempt_at__lte=lost) | Q(next_attempt_at__isnull=True)
    swept = _first_swept_attempt()
    if swept is not None:
        due |= Q(attempts__gte=swept, next_attempt_at__lte=now)
    ids = list(
        WebhookDelivery.objects.filter(due, status=Status.PENDING)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        background.send(background.WEBHOOK_DELIVER, delivery_id)
    return len(ids)


# --- steps ------------------------------------------------------------------------------------


def _pending(delivery_id: int) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING)


def _status_of(delivery_id: int) -> str:
    return str(WebhookDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first() or "missing")


def _claim(delivery: WebhookDelivery) -> int | None:
    """Take the delivery for one attempt; the attempt's number, or None when it is not due, is
    held by another run, or is done. A due delivery that has used up its attempts (its workers
    died mid-send) fails instead. Only the row's own columns are in the condition, so PostgreSQL
    re-checks all of it when two claims race for the row."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT + LEASE_MARGIN_SECONDS)
    due = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True)
    )
    max_attempts = settings.WEBHOOK_MAX_ATTEMPTS
    # The attempt number is fenced too: a claim only succeeds from the count this run read.
    claimed = due.filter(attempts=delivery.attempts, attempts__lt=max_attempts).update(
        attempts=delivery.attempts + 1, next_attempt_at=lease_until
    )
    if claimed:
        return delivery.attempts + 1
    due.filter(attempts__gte=max_attempts).update(
        status=Status.FAILED,
        next_attempt_at=None,
        error=f"Gave up after {max_attempts} attempts; the last one never finished (its worker stopped).",
    )
    return None


def _send(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> _Answer:
    """POST the signed payload to the endpoint, once; what came back, in words for the log."""
    url = endpoint.url
    timeout = settings.WEBHOOK_TIMEOUT
    try:
        target, address = endpoint_url_vet(url)
    except EndpointRefused as exc:
        return _Answer(None, f"Refused: {exc}", permanent=True)
    except TransientError as exc:
        return _Answer(None, str(exc))
    body = body_of(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=endpoint.secret, message_id=delivery.message_id, timestamp=timestamp, body=body
        ),
    }
    deadline = time.monotonic() + timeout
    try:
        with PinnedClient() as client:
            request = client.build_request(
                "POST",
                target,
                content=body.encode("ascii"),
                headers=headers,
                timeout=timeout,
                extensions={_PINNED_ADDRESS: address},
            )
            response = client.send(request, stream=True)
            try:
                excerpt = _excerpt(response, deadline)
            finally:
                response.close()
    except httpx.TimeoutException:
        return _Answer(None, f"Timed out after {timeout:g} s.")
    except httpx.HTTPError as exc:
        return _Answer(None, f"Could not connect: {str(exc) or type(exc).__name__}.")
    status = response.status_code
    if 200 <= status < 300:
        return _Answer(status, "")
    said = f"HTTP {status} {response.reason_phrase}".rstrip()
    if response.is_redirect:
        said += f" to {response.headers.get('location', '?')} (redirects are not followed; use the final URL)"
    return _Answer(status, f"{said}: {excerpt}" if excerpt else said)


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The first bytes of the answer's body, as text, for the log; never waits past ``deadline``."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT_BYTES or time.monotonic() > deadline:
            break
    return data[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace").strip()


def _record(delivery: WebhookDelivery, attempt: int, answer: _Answer) -> DeliveryOutcome:
    """Write the attempt's result, as long as this run still holds the claim."""
    now = timezone.now()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING, attempts=attempt)
    if answer.ok:
        mine.update(
            status=Status.DELIVERED,
            response_status=answer.status_code,
            error="",
            delivered_at=now,
            next_attempt_at=None,
        )
        return DeliveryOutcome(Status.DELIVERED)
    max_attempts = settings.WEBHOOK_MAX_ATTEMPTS
    if answer.permanent or attempt >= max_attempts:
        error = answer.error if answer.permanent else f"{answer.error} (gave up after {attempt} attempts)"
        mine.update(status=Status.FAILED, response_status=answer.status_code, error=error, next_attempt_at=None)
        log.info("webhook delivery %s failed for good: %s", delivery.pk, error)
        return DeliveryOutcome(Status.FAILED)
    delay = retry_delay(attempt)
    delay += random.uniform(0, delay * 0.2)  # jitter: endpoints that come back are not hit all at once
    next_at: datetime = now + timedelta(seconds=delay)
    mine.update(response_status=answer.status_code, error=answer.error, next_attempt_at=next_at)
    return DeliveryOutcome(Status.PENDING, retry_in=delay)


def _first_swept_attempt() -> int | None:
    """The attempt count from which retries are the sweeper's (their delay is over
    ``COUNTDOWN_MAX_SECONDS``); None when the task schedules every retry itself."""
    for attempt in range(1, settings.WEBHOOK_MAX_ATTEMPTS):
        if retry_delay(attempt) > COUNTDOWN_MAX_SECONDS:
            return attempt
    return None
