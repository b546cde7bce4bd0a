"""The agent dashboard as an agent uses it: the inbox, a ticket, replying, notes, fields, and
never a glimpse of another organization."""

from __future__ import annotations

import re
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from resolvo.conversations.models import Message
from resolvo.tickets.models import Draft, Ticket, TicketChange, TicketNote
from tests.dashboard.conftest import Desk


def test_signing_in_lands_on_the_inbox_and_strangers_go_to_the_login(desk: Desk) -> None:
    anonymous = Client()
    response = anonymous.get("/app/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/app/login/")
    login = Client()
    response = login.post("/app/login/", {"username": "sam", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/app/inbox/"
    assert login.get("/app/").status_code == 302
    assert login.get("/app/inbox/").status_code == 200
    assert anonymous.get("/app/inbox/live/").status_code == 403


def test_sign_in_attempts_are_limited_per_address(desk: Desk, settings: Any) -> None:
    from resolvo.api import ratelimit

    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "login": "3/minute"}
    ratelimit.reset()
    client = Client()
    codes = [client.post("/app/login/", {"username": "sam", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/app/login/", {"username": "sam", "password": "pw"})
    assert (
        limited.status_code == 429
        and int(limited["Retry-After"]) >= 1
        and "Too many requests" in limited.content.decode()
    )


def test_the_inbox_lists_handoffs_with_counts_and_filters(desk: Desk) -> None:
    first = desk.handoff("My hub blinks amber")
    second = desk.handoff("Refund for a broken bulb please", visitor="v2")
    Ticket.objects.filter(pk=second.pk).update(priority="urgent")
    page = desk.client.get("/app/inbox/").content.decode()
    assert "My hub blinks amber" in page and "Refund for a broken bulb" in page
    assert re.search(r"Unassigned <span class=\"count\">2</span>", page)
    urgent = desk.client.get("/app/inbox/?priority=urgent").content.decode()
    assert "Refund for a broken bulb" in urgent and "My hub blinks amber" not in urgent
    found = desk.client.get("/app/inbox/?q=amber").content.decode()
    assert f"#{first.pk}" in found and f"#{second.pk} " not in found
    mine = desk.client.get("/app/inbox/?assignee=me").content.decode()
    assert "Nothing here" in mine
    # htmx asks for the results only.
    partial = desk.client.get("/app/inbox/?q=refund", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-results")
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="inbox-results"') and "<html" not in body
    assert 'id="views" aria-label="Views" hx-swap-oob="true"' in body  # the counts follow
    assert desk.client.get("/app/inbox/").content.decode().count('id="views"') == 1


def test_the_inbox_query_count_does_not_grow_with_the_page(desk: Desk) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert desk.client.get("/app/inbox/?status=all").status_code == 200
        return len(captured)

    desk.handoff("one", visitor="a")
    queries()  # the first visit also stores the chosen organization in the session
    few = queries()
    for i in range(12):
        ticket = desk.handoff(f"question {i}", visitor=f"b{i}")
        ticket.tags.create(organization=ticket.organization, name=f"tag{i}")
    assert queries() == few


def test_the_ticket_page_shows_the_thread_escaped_and_the_summary(desk: Desk) -> None:
    ticket = desk.handoff("<img src=x onerror=alert(1)> hub offline", then=("<script>alert(2)</script>",))
    page = desk.client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt; hub offline" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "Handoff summary" in page and "The customer asked to talk to a person." in page


def test_the_ticket_page_query_count_does_not_grow_with_the_thread(desk: Desk) -> None:
    short = desk.handoff("short thread")
    long = desk.handoff("long thread", visitor="v2", then=tuple(f"more {i}" for i in range(20)))

    def queries(ticket: Ticket) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert desk.client.get(f"/app/tickets/{ticket.pk}/").status_code == 200
        return len(captured)

    queries(short)  # the first visit also stores the chosen organization in the session
    assert queries(long) == queries(short)


def test_an_agent_reply_reaches_the_conversation_and_moves_the_ticket(desk: Desk) -> None:
    ticket = desk.handoff("Is the hub waterproof?")
    response = desk.client.post(f"/app/tickets/{ticket.pk}/reply/", {"text": "It is splash-proof (IP44)."})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.assignee == desk.agent and ticket.first_response_at is not None
    reply = Message.objects.get(conversation=ticket.conversation, role="agent")
    assert reply.text == "It is splash-proof (IP44)." and reply.author == desk.agent
    assert ticket.conversation.status == "human"  # type: ignore[union-attr]
    desk.client.post(f"/app/tickets/{ticket.pk}/reply/", {"text": "Anything else?", "then": "resolve"})
    ticket.refresh_from_db()
    assert ticket.status == "resolved" and ticket.conversation.status == "resolved"  # type: ignore[union-attr]


def test_notes_fields_and_the_audit_log(desk: Desk) -> None:
    ticket = desk.handoff("Billing question")
    client = desk.client
    client.post(f"/app/tickets/{ticket.pk}/note/", {"text": "VIP customer <b>careful</b>"})
    client.post(f"/app/tickets/{ticket.pk}/update/", {"priority": "high"})
    client.post(f"/app/tickets/{ticket.pk}/update/", {"tags": "Billing, refund ,billing"})
    client.post(f"/app/tickets/{ticket.pk}/update/", {"assignee": str(desk.agent.pk)})
    client.post(f"/app/tickets/{ticket.pk}/update/", {"status": "pending"})
    ticket.refresh_from_db()
    assert ticket.priority == "high" and ticket.status == "pending" and ticket.assignee == desk.agent
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["billing", "refund"]
    assert TicketNote.objects.get(ticket=ticket).text == "VIP customer <b>careful</b>"
    fields = list(TicketChange.objects.filter(ticket=ticket, actor=desk.agent).values_list("field", flat=True))
    assert fields == ["note", "priority", "tags", "assignee", "status"]
    page = client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert "VIP customer &lt;b&gt;careful&lt;/b&gt;" in page
    # A bad value is refused with the reason, as text for scripts and as a message for pages.
    refused = client.post(f"/app/tickets/{ticket.pk}/update/", {"tags": "<script>"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 422 and "not a usable tag" in refused.content.decode()
    followed = client.post(f"/app/tickets/{ticket.pk}/update/", {"status": "nonsense"}, follow=True)
    assert "Unknown status" in followed.content.decode()


def test_a_draft_reply_records_whether_it_was_sent_as_is_edited_or_discarded(desk: Desk) -> None:
    ticket = desk.handoff("How do I reset the hub?")
    question = "How do I reset the hub?"
    as_is = Draft.objects.create(ticket=ticket, author=desk.agent, question=question, text="Hold the button 10 s.")
    desk.client.post(f"/app/tickets/{ticket.pk}/reply/", {"text": "Hold the button 10 s.", "draft": as_is.pk})
    edited = Draft.objects.create(ticket=ticket, author=desk.agent, question=question, text="Hold it.")
    desk.client.post(f"/app/tickets/{ticket.pk}/reply/", {"text": "Hold it for 10 seconds.", "draft": edited.pk})
    dropped = Draft.objects.create(ticket=ticket, author=desk.agent, question=question, text="Wrong.")
    desk.client.post(f"/app/tickets/{ticket.pk}/drafts/{dropped.pk}/discard/")
    outcomes = {d.pk: (d.outcome, d.final_text) for d in Draft.objects.all()}
    assert outcomes[as_is.pk] == ("sent", "Hold the button 10 s.")
    assert outcomes[edited.pk] == ("edited", "Hold it for 10 seconds.")
    assert outcomes[dropped.pk] == ("discarded", "")


def test_every_dashboard_url_answers_404_for_another_organizations_ids(desk: Desk, other_desk: Desk) -> None:
    from resolvo.dashboard import urls

    theirs = other_desk.handoff("Their private question")
    draft = Draft.objects.create(ticket=theirs, author=other_desk.agent, question="q", text="secret draft")
    trace_id = _a_trace(other_desk)
    from resolvo.organizations.models import Membership

    membership = Membership.objects.get(user=other_desk.agent)
    # As an admin, so the admin-only pages (the assistant model's runs) are reached too.
    Membership.objects.filter(user=desk.agent).update(role=Membership.Role.ADMIN)
    from resolvo.tuning.models import TuningRun

    run = TuningRun.objects.create(organization=other_desk.kb.organization, base_model="m", status="succeeded")
    ids = {
        "run_id": run.pk,
        "ticket_id": theirs.pk,
        "draft_id": draft.pk,
        "trace_id": trace_id,
        "membership_id": membership.pk,
        "token": "not-an-invitation",
    }
    swept = 0
    for pattern in urls.urlpatterns:
        names = list(pattern.pattern.converters)  # type: ignore[attr-defined]
        if not names:
            continue
        url = reverse(f"dashboard:{pattern.name}", kwargs={n: ids[n] for n in names})
        reads = ("ticket", "trace", "ticket-live", "invitation")
        response = desk.client.get(url) if pattern.name in reads else desk.client.post(url, {"available": "0"})
        assert response.status_code == 404, (url, response.status_code)
        swept += 1
    assert swept >= 10
    theirs.refresh_from_db()
    assert theirs.status == "new" and not theirs.notes.exists()
    assert Draft.objects.get(pk=draft.pk).outcome == "pending"
    assert Membership.objects.get(pk=membership.pk).available is True
    assert not TuningRun.objects.get(pk=run.pk).promoted


def test_forms_need_the_csrf_token(desk: Desk) -> None:
    ticket = desk.handoff("csrf")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(desk.agent)
    assert strict.post(f"/app/tickets/{ticket.pk}/note/", {"text": "x"}).status_code == 403
    assert not TicketNote.objects.exists()


def test_someone_in_no_organization_is_told_so(db: None) -> None:
    from django.contrib.auth import get_user_model

    loner = get_user_model().objects.create_user("loner", password="pw")
    client = Client()
    client.force_login(loner)
    response = client.get("/app/inbox/")
    assert response.status_code == 403


def _a_trace(desk: Desk) -> int:
    from resolvo.answers.models import AnswerTrace

    return AnswerTrace.objects.create(
        organization=desk.kb.organization, knowledge_base=desk.kb, question="private question", answer="private"
    ).pk


def test_a_long_thread_opens_at_its_end_with_a_link_to_the_rest(desk: Desk) -> None:
    from resolvo.dashboard.views import THREAD_LATEST

    ticket = desk.handoff("first question", then=tuple(f"follow-up {i:03d}" for i in range(THREAD_LATEST + 5)))
    page = desk.client.get(f"/app/tickets/{ticket.pk}/").content.decode()
    assert "Show the earlier messages" in page and '<div class="body">first question</div>' not in page
    assert f"follow-up {THREAD_LATEST + 4:03d}" in page and page.count('class="msg ') == THREAD_LATEST
    whole = desk.client.get(f"/app/tickets/{ticket.pk}/?thread=all").content.decode()
    assert '<div class="body">first question</div>' in whole and "Show the earlier messages" not in whole
