"""An admin on the Assistant model page in a real browser: the gate's before/after comparison of
two finished runs (one refused, one passed), promoting the passed one, rolling back. Screenshots
at laptop and phone width are saved under test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.test_tuning import finished_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_compares_promotes_and_rolls_back(
    browser: Any, asgi_server: str, make_kb: Any, artifacts: Path
) -> None:
    from django.contrib.auth import get_user_model

    from resolvo.organizations.models import Membership
    from resolvo.organizations.services import membership_set
    from resolvo.tuning.models import TuningRun

    kb = make_kb("lumen", "help")
    admin = get_user_model().objects.create_user("ada", "ada@lumen.example", "pw", first_name="Ada")
    membership_set(organization=kb.organization, user=admin, role=Membership.Role.ADMIN)
    finished_run(kb, after_f1=0.12, after_abstained=0.9, error="")
    good = finished_run(kb, after_f1=0.41, after_abstained=0.1)
    errors: list[str] = []

    for name, viewport in (("laptop", {"width": 1366, "height": 900}), ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{asgi_server}/app/")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill("pw")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Assistant model").click()
        page.get_by_text("The gate refused this adapter").wait_for()
        page.get_by_text("The gate passed this adapter").wait_for()
        page.screenshot(path=str(artifacts / f"assistant-model-{name}.png"), full_page=True)
        if name == "phone":
            # Nothing spills sideways except inside the comparison's own scroller.
            wide = page.evaluate(
                "w => [...document.querySelectorAll('body *')].filter(e => !e.closest('.topnav'))"
                ".filter(e => e.getBoundingClientRect().right > w + 1)"
                ".map(e => e.tagName + '.' + e.className).slice(0, 8)",
                viewport["width"],
            )
            assert wide == [], wide
        context.close()

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{asgi_server}/app/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{asgi_server}/app/assistant/")
    page.locator("[data-promote]").click()
    page.get_by_text("Answering customers", exact=True).wait_for()
    assert page.locator("[data-current-model]").inner_text() == good.adapter_name
    page.screenshot(path=str(artifacts / "assistant-model-promoted-laptop.png"), full_page=True)
    page.locator("[data-rollback]").click()
    page.get_by_text("Rolled back: answers use the base model").wait_for()
    assert page.locator("[data-current-model]").inner_text() == "Base model"
    assert not TuningRun.objects.filter(promoted=True).exists()
    assert errors == []
    context.close()
