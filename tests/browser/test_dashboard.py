"""An agent's day, end to end in a real browser: a customer hands over in the widget; the ticket
appears in the agent's open inbox without a reload; the agent opens it, takes the AI draft, edits
it and sends it; the customer sees the reply live in the widget; the agent resolves; the customer
gives CSAT. Screenshots of the inbox and the ticket page (laptop and tablet widths) are saved under
test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_widget import ANSWER_TIMEOUT_MS, _ask, _open

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _watch(page: Any, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)


def test_an_agent_answers_a_handoff_with_an_edited_ai_draft(
    browser: Any, host_page: tuple[str, Any], asgi_server: str, artifacts: Path, answer_settings: Any
) -> None:
    from django.contrib.auth import get_user_model

    from resolvo.organizations.models import Membership
    from resolvo.organizations.services import membership_set
    from resolvo.tickets.models import CannedResponse, Draft, Ticket

    url, widget = host_page
    answer_settings.ANSWER_MAX_TOKENS = 80
    agent = get_user_model().objects.create_user("sam", "sam@lumen.example", "pw", first_name="Sam")
    membership_set(organization=widget.organization, user=agent, role=Membership.Role.AGENT)
    CannedResponse.objects.create(
        organization=widget.organization, title="Greeting", shortcut="hi", text="Hi {customer_name},"
    )
    errors: list[str] = []

    # The agent signs in and keeps the inbox open.
    desk = browser.new_context(viewport={"width": 1366, "height": 860})
    agent_page = desk.new_page()
    _watch(agent_page, errors)
    agent_page.goto(f"{asgi_server}/app/")
    agent_page.get_by_label("Username").fill("sam")
    agent_page.get_by_label("Password").fill("pw")
    agent_page.get_by_role("button", name="Sign in").click()
    agent_page.get_by_text("Nothing here").wait_for()
    agent_page.wait_for_selector("[data-live-dot].on", timeout=10_000)

    # A customer asks for a person in the widget, then writes their question.
    shop = browser.new_context(viewport={"width": 1280, "height": 800})
    customer = shop.new_page()
    _watch(customer, errors)
    customer.goto(url)
    _open(customer)
    customer.get_by_role("button", name="More options").click()
    customer.get_by_role("menuitem", name="Talk to a person").click()
    customer.get_by_text("I've passed your question to our support team").wait_for(timeout=30_000)
    _ask(customer, "How do I connect the hub to Wi-Fi on Android?")
    customer.locator(".rv-msg--customer").filter(has_text="Wi-Fi on Android").wait_for()

    # It appears in the agent's open inbox by itself.
    row = agent_page.locator("table.tickets tbody tr").first
    row.wait_for(timeout=15_000)
    ticket = Ticket.objects.get(organization=widget.organization)
    # The row takes the customer's question as its subject, and the view counts follow.
    row.filter(has_text="Wi-Fi on Android").wait_for(timeout=15_000)
    agent_page.locator("#views a", has_text="Unassigned").filter(has_text="1").wait_for(timeout=5_000)
    agent_page.screenshot(path=str(artifacts / "dashboard-inbox-laptop.png"))

    # Open it with the keyboard, take the AI draft, edit it, send it.
    agent_page.keyboard.press("j")
    agent_page.keyboard.press("Enter")
    agent_page.wait_for_url(f"**/app/tickets/{ticket.pk}/")
    agent_page.get_by_text("The customer asked to talk to a person.").wait_for()
    agent_page.get_by_role("button", name="Draft with AI").click()
    status = agent_page.locator("[data-draft-status]")
    agent_page.wait_for_function(
        "() => /Draft ready|does not cover/.test(document.querySelector('[data-draft-status]').textContent)",
        timeout=ANSWER_TIMEOUT_MS,
    )
    reply = agent_page.locator("#reply-text")
    drafted = reply.input_value()
    assert drafted.strip(), status.text_content()
    reply.fill(drafted.strip() + "\n\nSam from Lumen")
    agent_page.screenshot(path=str(artifacts / "dashboard-ticket-draft-laptop.png"))
    agent_page.get_by_role("button", name="Send", exact=True).click()
    agent_page.locator(".msg.agent").filter(has_text="Sam from Lumen").wait_for(timeout=15_000)

    draft = Draft.objects.get(ticket=ticket)
    assert draft.outcome == Draft.Outcome.EDITED and draft.final_text.endswith("Sam from Lumen")
    assert draft.text.strip() == drafted.strip()

    # The customer sees it live.
    customer.locator(".rv-msg--agent").filter(has_text="Sam from Lumen").wait_for(timeout=30_000)

    # The agent resolves; the customer rates.
    agent_page.locator("#f-status").select_option("resolved")
    agent_page.locator(".ticket-head .chip.resolved, #sidebar").first.wait_for()
    agent_page.wait_for_function("() => document.querySelector('#f-status').value === 'resolved'")
    csat = customer.locator(".rv-csat")
    csat.get_by_role("button", name="4 out of 5").click(timeout=30_000)
    csat.get_by_role("button", name="Send", exact=True).click()
    customer.get_by_text("Thank you!").wait_for(timeout=10_000)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED and ticket.conversation.csat_score == 4  # type: ignore[union-attr]

    agent_page.reload()
    agent_page.get_by_text("4/5").wait_for()
    agent_page.screenshot(path=str(artifacts / "dashboard-ticket-laptop.png"), full_page=True)

    # The same pages on a tablet.
    tablet = browser.new_context(viewport={"width": 820, "height": 1180}, storage_state=desk.storage_state())
    small = tablet.new_page()
    _watch(small, errors)
    small.goto(f"{asgi_server}/app/inbox/?status=all")
    small.locator("table.tickets tbody tr").first.wait_for()
    small.screenshot(path=str(artifacts / "dashboard-inbox-tablet.png"))
    small.goto(f"{asgi_server}/app/tickets/{ticket.pk}/")
    small.locator(".msg.agent").first.wait_for()
    small.screenshot(path=str(artifacts / "dashboard-ticket-tablet.png"), full_page=True)
    tablet.close()
    desk.close()
    shop.close()
    assert not [e for e in errors if "ERR_ABORTED" not in e], errors
