"""Drive the demo in Chromium and save screenshots of the widget (demo/screenshots/*.png).

Needs the fake API running (`SPEED=0.3 node demo/fake-api.mjs`), Debian's /usr/bin/chromium and
Playwright for Python in a scratch virtualenv (`pip install playwright`; no browser download):

    python demo/screenshots.py [--base http://127.0.0.1:8788/demo/]

The default base is the demo page on the second port, a different origin from the API, so the
run also proves the cross-origin path. Besides the pictures it checks, as a person would: focus
moves to the input on open and back to the launcher on Esc, the launcher is a labelled button,
the log is a polite live region, a reply streams with linked citations and a Sources list, the
visitor token is in localStorage and a reload resumes the conversation, HTML in a message stays
text (no dialog opens), a handoff brings the agent's reply through the events stream, and no
console error occurs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]
KEY = "demo-public-key"


def watch(page: Page, problems: list[str]) -> None:
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("dialog", lambda d: (problems.append(f"a dialog opened: {d.message}"), d.dismiss()))


def ask(page: Page, question: str) -> None:
    box = page.locator(".rv-input")
    box.fill(question)
    box.press("Enter")


def last_answer(page: Page):
    return page.locator(".rv-msg--assistant").last


def shot(page: Page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=str(path))
    size = path.stat().st_size
    print(f"{path.relative_to(OUT.parent.parent)}: {size // 1024} KiB")
    if size > 200 * 1024:
        raise SystemExit(f"{name} is over 200 KiB")


def desktop(browser, base: str, problems: list[str]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1, locale="en-GB")
    page = context.new_page()
    watch(page, problems)
    page.goto(base)
    launcher = page.locator(".rv-launcher")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-label", "Open chat")
    shot(page, "desktop-closed.png")

    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".rv-panel")).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('resolvo-chat').shadowRoot.activeElement?.classList.contains('rv-input')"
    )
    expect(page.locator(".rv-log")).to_have_attribute("aria-live", "polite")

    ask(page, "How do I reset my router to factory settings?")
    expect(page.locator(".rv-thinking")).to_be_visible()
    answer = last_answer(page)
    expect(answer.locator(".rv-sources")).to_be_visible(timeout=15000)
    expect(answer.locator(".rv-actions")).to_be_visible()
    expect(answer.locator(".rv-cite a").first).to_have_attribute("rel", "noopener noreferrer")
    expect(answer.locator(".rv-source")).to_have_count(3)
    body = answer.locator(".rv-bubble").inner_text()
    assert "[4]" not in body and "4" not in answer.locator(".rv-cite").all_inner_texts(), body
    page.wait_for_timeout(400)
    shot(page, "desktop-answer.png")

    token = page.evaluate(f"localStorage.getItem('resolvo:{KEY}:visitor')")
    conversation = page.evaluate(f"localStorage.getItem('resolvo:{KEY}:conversation')")
    assert token and token.startswith("vt_") and conversation, (token, conversation)

    # Markup in a message stays text.
    ask(page, "<img src=x onerror=alert(1)>")
    answer = last_answer(page)
    expect(answer.locator(".rv-actions")).to_be_visible(timeout=15000)
    assert page.locator(".rv-log img").count() == 0
    expect(page.locator(".rv-msg--customer").last).to_contain_text("<img src=x onerror=alert(1)>")
    assert answer.locator("a:not([href^='http'])").count() == 0

    # No answer in the docs: abstains, offers a person; the agent replies on the events stream.
    ask(page, "Can I get a refund for my router?")
    handoff = last_answer(page).locator(".rv-handoff")
    expect(handoff).to_be_visible(timeout=15000)
    handoff.click()
    expect(page.locator(".rv-handoff-done")).to_be_visible()
    expect(page.locator(".rv-status")).to_have_attribute("data-status", "waiting_human")
    expect(page.locator(".rv-msg--system")).to_be_visible(timeout=10000)
    expect(page.locator(".rv-msg--agent")).to_be_visible(timeout=15000)
    expect(page.locator(".rv-status")).to_have_attribute("data-status", "human")
    page.wait_for_timeout(400)
    shot(page, "desktop-handoff.png")

    # Thanks → resolved → "How did we do?"
    ask(page, "Thanks, that's all!")
    expect(page.locator(".rv-csat")).to_be_visible(timeout=15000)
    page.locator(".rv-stars button").nth(4).click()
    page.locator(".rv-csat textarea").fill("Quick and clear.")
    page.wait_for_timeout(300)
    shot(page, "desktop-csat.png")
    page.locator(".rv-csat .rv-primary").click()
    expect(page.locator(".rv-csat-thanks")).to_be_visible()

    # Esc closes and gives focus back to the launcher.
    page.locator(".rv-input").focus()
    page.keyboard.press("Escape")
    expect(page.locator(".rv-panel")).to_be_hidden()
    page.wait_for_function(
        "() => document.querySelector('resolvo-chat').shadowRoot.activeElement?.classList.contains('rv-launcher')"
    )

    # A reload resumes the same conversation from the stored visitor token.
    shown = page.locator(".rv-msg").count()
    page.reload()
    page.locator(".rv-launcher").click()
    expect(page.locator(".rv-msg--agent").first).to_be_visible()
    expect(page.locator(".rv-msg")).to_have_count(shown)
    expect(page.locator(".rv-status")).to_have_attribute("data-status", "resolved")
    context.close()


def phone(browser, base: str, problems: list[str]) -> None:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    page = context.new_page()
    watch(page, problems)
    page.goto(base)
    page.locator(".rv-launcher").click()
    page.wait_for_timeout(400)  # the opening transition
    box = page.locator(".rv-panel").bounding_box()
    assert box and round(box["width"]) == 360 and round(box["height"]) == 740 and round(box["y"]) == 0, box
    ask(page, "How do I set up a guest network?")
    expect(last_answer(page).locator(".rv-actions")).to_be_visible(timeout=15000)
    page.wait_for_timeout(400)
    shot(page, "phone-answer.png")
    context.close()


def german(browser, base: str, problems: list[str]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    watch(page, problems)
    page.goto(base + "?lang=de&open=1")
    expect(page.locator(".rv-input")).to_have_attribute("placeholder", "Stellen Sie eine Frage")
    expect(page.locator(".rv-greeting, .rv-msg--assistant").first).to_contain_text("Hallo")
    context.close()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    watch(page, problems)
    page.goto(base + "?open=1")
    expect(page.locator(".rv-input")).to_have_attribute("placeholder", "Posez une question")
    context.close()


def resilience(browser, base: str, problems: list[str]) -> None:
    """A failed send offers "Try again" and retries with the same Idempotency-Key; a 429 shows the
    server's words and holds the send button for Retry-After; a refused boot renders nothing."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    keys: list[str] = []

    def flaky(route):
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.abort("connectionreset")
        elif len(keys) == 2:
            origin = route.request.headers.get("origin", "*")
            route.fulfill(
                status=429,
                headers={
                    "Content-Type": "application/json",
                    "Retry-After": "2",
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Expose-Headers": "Retry-After",
                },
                body='{"detail": "You are sending messages too quickly. Please wait a moment."}',
            )
        else:
            route.continue_()

    page.route("**/conversations/*/messages", flaky)
    page.goto(base + "?open=1")
    ask(page, "How do I set up a guest network?")
    failed = page.locator(".rv-msg--customer.rv-failed")
    expect(failed).to_contain_text("We couldn't reach the server")
    failed.locator(".rv-link-btn").click()
    expect(failed).to_contain_text("You are sending messages too quickly")
    page.locator(".rv-input").fill("another question")
    expect(page.locator(".rv-send")).to_be_disabled()
    page.locator(".rv-input").fill("")
    failed.locator(".rv-link-btn").click()
    expect(last_answer(page).locator(".rv-sources")).to_be_visible(timeout=15000)
    expect(page.locator(".rv-msg--customer")).to_have_count(1)
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0], keys
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.route(
        "**/api/widget/v1/boot",
        lambda route: route.fulfill(
            status=403,
            headers={
                "Content-Type": "application/json",
                "Access-Control-Allow-Origin": route.request.headers.get("origin", "*"),
            },
            body='{"detail": "This website is not allowed to use this widget."}',
        ),
    )
    page.goto(base)
    page.wait_for_timeout(1000)
    assert page.locator("resolvo-chat").count() == 0
    assert len([w for w in warnings if "Resolvo" in w]) == 1, warnings
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8788/demo/")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        desktop(browser, args.base, problems)
        phone(browser, args.base, problems)
        german(browser, args.base, problems)
        resilience(browser, args.base, problems)
        browser.close()
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
