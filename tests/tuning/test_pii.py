"""Personal data is replaced before an answer becomes a training example; the company's own
published contacts (in the passages) are not personal data and stay."""

from __future__ import annotations

from resolvo.tuning.pii import Scrubber


def test_emails_phones_and_contact_names_are_replaced() -> None:
    scrub = Scrubber(names=["Anna Schmidt", "Bo"])
    text = scrub("Hi Anna Schmidt, write to anna.schmidt@example.org or call +44 20 7946 0958. Anna, thanks!")
    assert text == "Hi [name], write to [email] or call [phone]. [name], thanks!"
    assert scrub.counts == {"name": 2, "email": 1, "phone": 1}


def test_contacts_the_passages_publish_stay() -> None:
    passages = "Email support@lumen.example or call 0800 555 0199 (free)."
    scrub = Scrubber(keep=passages)
    text = scrub("Email support@lumen.example or call 0800 555 0199; my number is 555-123-4567.")
    assert text == "Email support@lumen.example or call 0800 555 0199; my number is [phone]."


def test_a_name_word_the_passages_use_is_a_product_term() -> None:
    scrub = Scrubber(names=["Mark Jones"], keep="Tap Mark as read to clear the badge.")
    assert (
        scrub("Mark Jones asked: tap Mark as read? Thanks, Jones") == "[name] asked: tap Mark as read? Thanks, [name]"
    )


def test_short_numbers_versions_and_dates_are_not_phone_numbers() -> None:
    scrub = Scrubber()
    text = "Hold the button for 10 seconds, firmware 2.4.1, released 2026-03-01, port 8080."
    assert scrub(text) == text
