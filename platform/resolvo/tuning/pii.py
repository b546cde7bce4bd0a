"""Personal data out of training examples: e-mail addresses, phone numbers and the names that
the organization's contact records hold.

An address or number that the passages themselves contain is the company's own published
contact (``support@…``), not personal data, and stays: the engine shows only contacts that the
passages contain, so a tuned model should learn to give exactly those.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
PHONE = re.compile(r"(?<![\w/])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){2,4}(?![\w/])")
"""Seven or more digits in groups, with an optional country code: 555-123-4567, +44 20 7946 0958."""

DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")

EMAIL_TOKEN, PHONE_TOKEN, NAME_TOKEN = "[email]", "[phone]", "[name]"


@dataclass
class Scrubber:
    """Replaces personal data with placeholders and counts what it replaced."""

    names: Iterable[str] = ()
    keep: str = ""
    """Text whose contacts are public (the passages): those are left as they are."""
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        words: set[str] = set()
        for name in self.names:
            name = " ".join(name.split())
            if len(name) < 3:
                continue
            words.add(name)
            words.update(part for part in name.split() if len(part) >= 3 and part[:1].isupper())
        # A name word the passages use is a product term there ("Mark as read"), not a person.
        words = {w for w in words if not re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", self.keep)}
        # Longest first, so "Anna Schmidt" goes as one before "Anna" would split it.
        ordered = sorted(words, key=len, reverse=True)
        self._names = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in ordered) + r")(?!\w)") if ordered else None
        )
        self._kept = {m.lower() for m in EMAIL.findall(self.keep)} | {_digits(m) for m in PHONE.findall(self.keep)}

    def __call__(self, text: str) -> str:
        def email(m: re.Match[str]) -> str:
            if m.group().lower() in self._kept:
                return m.group()
            self.counts["email"] += 1
            return EMAIL_TOKEN

        def phone(m: re.Match[str]) -> str:
            if _digits(m.group()) in self._kept or len(_digits(m.group())) < 7 or DATE.fullmatch(m.group()):
                return m.group()
            self.counts["phone"] += 1
            return PHONE_TOKEN

        def name(m: re.Match[str]) -> str:
            self.counts["name"] += 1
            return NAME_TOKEN

        text = EMAIL.sub(email, text)
        text = PHONE.sub(phone, text)
        if self._names is not None:
            text = self._names.sub(name, text)
        return text


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)
