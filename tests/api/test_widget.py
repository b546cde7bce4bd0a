"""The public widget API against PostgreSQL, Redis (rate limits), the embedded Qdrant engine and
the bundled model: origins, keys and identity, visitor sessions, idempotent sends, the streamed
answer, replay from the event log, handoff, feedback, limits and tenant isolation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import pytest

from resolvo.conversations.models import Conversation, Message, MessageFeedback
from resolvo.tickets.models import Ticket
from tests.api.conftest import ORIGIN, WidgetClient

# The answer streams from a thread of its own (as under ASGI), which needs committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def body_of(response: Any) -> str:
    """A streamed body, whole: the widget API streams from async iterators."""
    from asgiref.sync import async_to_sync

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)().decode()


def sse_events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    body = body_of(response)
    out = []
    for block in body.split("\n\n"):
        name = re.search(r"^event: (.+)$", block, re.M)
        data = re.search(r"^data: (.+)$", block, re.M)
        if name and data:
            out.append((name.group(1), json.loads(data.group(1))))
    return out


def test_boot_refuses_other_origins_unknown_keys_and_pages_without_an_origin(widget: Any) -> None:
    assert WidgetClient(widget.public_key, origin="https://evil.example").boot().status_code == 403
    assert WidgetClient("pk_nonsense").boot().status_code == 403
    anonymous = WidgetClient(widget.public_key, origin="")
    anonymous.client = type(anonymous.client)()  # no Origin header at all
    assert anonymous.boot().status_code == 403
    ok = WidgetClient(widget.public_key).boot()
    assert ok.status_code == 200
    body = ok.json()
    assert body["organization"]["name"] == "Lumen Home" and body["conversation"] is None
    assert set(body["widget"]) == {"greeting", "colour", "position", "launcher_text"}


def test_a_visitor_token_works_only_from_its_widgets_origins(visitor: WidgetClient) -> None:
    assert visitor.post("/conversations").status_code == 200
    elsewhere = WidgetClient(visitor.key, origin="https://evil.example")
    elsewhere.token = visitor.token
    assert elsewhere.post("/conversations").status_code == 403
    forged = WidgetClient(visitor.key)
    forged.token = visitor.token[:-3] + "abc"
    assert forged.post("/conversations").status_code == 403


def test_identity_verification_required_mode_refuses_unverified_visitors(widget: Any) -> None:
    from resolvo.organizations.models import Widget

    widget.identity = Widget.Identity.REQUIRED
    widget.save()
    client = WidgetClient(widget.public_key)
    assert client.boot().status_code == 403
    assert client.boot(user_id="u-42", user_hash="0" * 64).status_code == 403
    good = hmac.new(widget.identity_secret.encode(), b"u-42", hashlib.sha256).hexdigest()
    assert client.boot(user_id="u-42", user_hash=good).status_code == 200
    assert client.post("/conversations").json()["status"] == "bot"
    assert Conversation.objects.get().contact_id == "u-42"


def identity_jwt(
    secret: str, *, lifetime: int | None = 300, age: int = 0, algorithm: str = "HS256", **claims: Any
) -> str:
    """What the host page's server signs: sub, iat and exp (``lifetime`` seconds after iat, which is
    ``age`` seconds ago); None for a claim leaves it out."""
    import warnings

    import jwt

    now = int(time.time())
    payload: dict[str, Any] = {"sub": "u-42", "iat": now - age}
    if lifetime is not None:
        payload["exp"] = now - age + lifetime
    payload.update(claims)
    with warnings.catch_warnings():  # a 43-byte secret is short for HS384/HS512, tokens made to be refused
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm=algorithm)


def test_identity_jwt_boots_with_the_verified_user_id(widget: Any) -> None:
    from resolvo.organizations.models import Widget

    widget.identity = Widget.Identity.REQUIRED
    widget.save()
    client = WidgetClient(widget.public_key)
    token = identity_jwt(widget.identity_secret, sub="u-7", email="ada@example.com", name="Ada")
    assert client.boot(user_jwt=token).status_code == 200
    assert client.post("/conversations").json()["status"] == "bot"
    assert Conversation.objects.get().contact_id == "u-7"
    # Without iat, what is left of it counts; a token expired within the 30 s leeway still works.
    assert client.boot(user_jwt=identity_jwt(widget.identity_secret, iat=None)).status_code == 200
    assert client.boot(user_jwt=identity_jwt(widget.identity_secret, lifetime=300, age=310)).status_code == 200


def test_identity_jwt_refusals_answer_403_in_required_and_optional_mode(widget: Any) -> None:
    from resolvo.organizations.models import Widget

    secret = widget.identity_secret
    refusals = {
        "expired": (identity_jwt(secret, lifetime=300, age=400), "expired"),
        "another secret": (identity_jwt("another-widgets-secret-of-43-characters-x"), "signature does not match"),
        "alg none": (identity_jwt(None, algorithm="none"), "HS256"),
        "HS512": (identity_jwt(secret, algorithm="HS512"), "HS256"),
        "HS384": (identity_jwt(secret, algorithm="HS384"), "HS256"),
        "no sub": (identity_jwt(secret, sub=None), "'sub'"),
        "no exp": (identity_jwt(secret, lifetime=None), "'exp'"),
        "empty sub": (identity_jwt(secret, sub=""), "names no user"),
        "long sub": (identity_jwt(secret, sub="u" * 201), "longer than 200"),
        "numeric sub": (identity_jwt(secret, sub=42), "not valid"),
        "too long-lived": (identity_jwt(secret, lifetime=11 * 60), "longer than 10 minutes"),
        "too long-lived, no iat": (identity_jwt(secret, lifetime=20 * 60, iat=None), "longer than 10 minutes"),
        "issued in the future": (identity_jwt(secret, age=-3600, lifetime=60), "not valid"),
        "garbage": ("not.a.jwt", "not valid"),
    }
    for mode in (Widget.Identity.REQUIRED, Widget.Identity.OPTIONAL):
        widget.identity = mode
        widget.save()
        for case, (token, detail) in refusals.items():
            refused = WidgetClient(widget.public_key).boot(user_jwt=token)
            assert refused.status_code == 403, (mode, case)
            assert detail in refused.json()["detail"], (mode, case, refused.json())
    assert not Conversation.objects.exists()


def test_identity_jwt_with_the_hmac_proof_is_ambiguous_and_off_mode_ignores_both(widget: Any) -> None:
    from resolvo.organizations.models import Widget

    widget.identity = Widget.Identity.OPTIONAL
    widget.save()
    client = WidgetClient(widget.public_key)
    good_hash = hmac.new(widget.identity_secret.encode(), b"u-42", hashlib.sha256).hexdigest()
    good_jwt = identity_jwt(widget.identity_secret)
    both = client.boot(user_id="u-42", user_hash=good_hash, user_jwt=good_jwt)
    assert both.status_code == 403 and "not both" in both.json()["detail"]
    assert client.boot(user_id="u-42", user_jwt=good_jwt).status_code == 403
    assert client.boot().status_code == 200  # optional: no proof at all is an anonymous visitor
    widget.identity = Widget.Identity.OFF
    widget.save()
    assert client.boot(user_jwt="not.a.jwt").status_code == 200
    assert client.post("/conversations").status_code == 200
    assert Conversation.objects.get().contact_id == ""


def test_a_reload_resumes_the_conversation_and_a_rotated_key_starts_afresh(visitor: WidgetClient, widget: Any) -> None:
    conversation = visitor.post("/conversations").json()
    visitor.post(f"/conversations/{conversation['id']}/messages", {"text": "Hello there"}, HTTP_IDEMPOTENCY_KEY="k1")
    again = visitor.boot().json()
    assert again["conversation"]["id"] == conversation["id"]
    assert again["conversation"]["messages"][0]["text"] == "Hello there"
    from resolvo.organizations.services import widget_rotate_key

    old_key = widget.public_key
    widget_rotate_key(widget=widget)
    assert WidgetClient(old_key).boot().status_code == 403
    rotated = WidgetClient(widget.public_key)
    rotated.token = visitor.token  # made with the old key: a fresh visitor, no conversation
    body = rotated.boot().json()
    assert body["conversation"] is None and rotated.token != visitor.token


def test_a_message_streams_the_answer_and_a_retried_send_never_duplicates(visitor: WidgetClient) -> None:
    conversation = visitor.post("/conversations").json()
    path = f"/conversations/{conversation['id']}/messages"
    question = {"text": "What does a blinking amber hub light mean?"}
    events = sse_events(visitor.post(path, question, HTTP_IDEMPOTENCY_KEY="send-1"))
    names = [name for name, _ in events]
    assert names[0] == "message" and names[1] == "sources" and names[-1] == "done"
    assert set(names[2:-2]) <= {"token"} and names[-2] == "citations"
    done = events[-1][1]
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.text == done["answer"] and reply.trace_id == done["trace_id"] and reply.pk == done["message_id"]
    retried = sse_events(visitor.post(path, question, HTTP_IDEMPOTENCY_KEY="send-1"))
    assert [name for name, _ in retried] == ["message", "status"]
    assert retried[1][1]["replayed"] is True and retried[1][1]["reply"]["id"] == reply.pk
    assert Message.objects.filter(role=Message.Role.CUSTOMER).count() == 1


def test_messages_are_bounded_and_html_stays_text(visitor: WidgetClient) -> None:
    conversation = visitor.post("/conversations").json()
    path = f"/conversations/{conversation['id']}/messages"
    too_long = visitor.post(path, {"text": "why " * 1000})
    assert too_long.status_code == 422 and "under 2,000" in too_long.json()["detail"]
    assert not Message.objects.exists()
    visitor.post(f"/conversations/{conversation['id']}/handoff")  # a person owns it: no answer needed
    html = '<img src=x onerror="alert(1)"> is my hub broken?'
    events = sse_events(visitor.post(path, {"text": html}, HTTP_IDEMPOTENCY_KEY="h"))
    assert events[0] == ("message", events[0][1]) and events[0][1]["text"] == html
    assert [name for name, _ in events] == ["message", "status"]


def test_other_visitors_and_organizations_ids_answer_404(visitor: WidgetClient, widget: Any, make_kb: Any) -> None:
    mine = visitor.post("/conversations").json()["id"]
    stranger = WidgetClient(widget.public_key)
    stranger.boot()
    assert stranger.get(f"/conversations/{mine}").status_code == 404
    assert stranger.post(f"/conversations/{mine}/messages", {"text": "hi"}).status_code == 404
    assert stranger.post(f"/conversations/{mine}/handoff").status_code == 404
    from resolvo.organizations.models import Widget

    other_kb = make_kb("other-co", "help")
    theirs = Widget.objects.create(organization=other_kb.organization, allowed_origins=ORIGIN)
    outsider = WidgetClient(theirs.public_key)
    outsider.boot()
    assert outsider.get(f"/conversations/{mine}").status_code == 404


def test_rate_limits_answer_429_with_retry_after(visitor: WidgetClient, settings: Any) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "visitor": "3/minute"}
    from resolvo.api import ratelimit

    ratelimit.reset()
    codes = [visitor.post("/conversations").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = visitor.post("/conversations")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many requests" in refused.json()["detail"]


def test_handoff_feedback_csat_and_the_event_log_replay(visitor: WidgetClient, settings: Any) -> None:
    settings.API_EVENTS_STREAM_SECONDS = 0.3
    settings.API_EVENTS_KEEPALIVE_SECONDS = 0.1
    conversation = visitor.post("/conversations").json()
    cid = conversation["id"]
    events = sse_events(
        visitor.post(
            f"/conversations/{cid}/messages", {"text": "Who won the 1998 world cup?"}, HTTP_IDEMPOTENCY_KEY="a"
        )
    )
    assert events[-1][1]["abstained"] is True
    answer = Message.objects.get(role=Message.Role.ASSISTANT)
    assert answer.offers_handoff
    assert visitor.post(f"/messages/{answer.pk}/feedback", {"rating": "down"}).status_code == 204
    assert MessageFeedback.objects.get(message=answer).rating == "down"
    handed = visitor.post(f"/conversations/{cid}/handoff").json()
    ticket = Ticket.objects.get(pk=handed["ticket"])
    assert handed["status"] == "waiting_human" and ticket.handoff_trigger == "customer_accepted"
    # Replay: everything after the customer's own message (event 1).
    replay = visitor.get(f"/conversations/{cid}/events?after=1")
    body = body_of(replay)
    ids = [int(i) for i in re.findall(r"^id: (\d+)$", body, re.M)]
    assert ids == sorted(ids) and ids[0] == 2
    assert "event: status" in body and "support team" in body
    assert visitor.post(f"/conversations/{cid}/csat", {"score": 6}).status_code == 422
    assert visitor.post(f"/conversations/{cid}/csat", {"score": 5, "comment": "Quick!"}).status_code == 204
    assert Conversation.objects.get(pk=cid).csat_score == 5


def test_cors_preflight_is_answered_only_for_widget_origins(widget: Any) -> None:
    from django.test import Client

    client = Client()
    allowed = client.options(
        "/api/widget/v1/boot",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,idempotency-key",
    )
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "idempotency-key" in allowed["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in allowed
    refused = client.options(
        "/api/widget/v1/boot", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in refused


def test_the_openapi_schema_documents_the_widget_api(db: None) -> None:
    from django.test import Client

    schema = Client().get("/api/widget/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/widget/v1/boot",
        "/api/widget/v1/conversations",
        "/api/widget/v1/conversations/{conversation_id}/messages",
        "/api/widget/v1/conversations/{conversation_id}/events",
        "/api/widget/v1/conversations/{conversation_id}/handoff",
        "/api/widget/v1/messages/{message_id}/feedback",
        "/api/widget/v1/conversations/{conversation_id}/csat",
    } <= paths


def test_typing_reaches_only_the_visitors_own_conversation_and_is_limited(visitor: WidgetClient, settings: Any) -> None:
    from resolvo.api import ratelimit

    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "typing": "2/minute"}
    ratelimit.reset()
    mine = visitor.post("/conversations").json()["id"]
    codes = [visitor.post(f"/conversations/{mine}/typing").status_code for _ in range(3)]
    assert codes == [204, 204, 429]
    stranger = WidgetClient(visitor.key)
    stranger.boot()
    assert stranger.post(f"/conversations/{mine}/typing").status_code == 404
