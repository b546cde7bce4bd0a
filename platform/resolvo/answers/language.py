"""The customer's language: detected per message, with the conversation's language as fallback.

Detection uses py3langid (BSD-3, its model ships inside the package, ~0.04 ms a message here),
restricted to the languages Resolvo has fixed messages for (``prompts/messages/*.json``).
Short messages ("ok", "and HDMI?") are ambiguous in any detector, so a guess below
``MIN_CONFIDENCE`` or on fewer than ``MIN_LETTERS`` letters falls back to the hint (the
conversation's language, the widget's setting) and then to English.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from resolvo.answers.prompts import PROMPTS_DIR

NAMES = {
    "en": "English",
    "es": "Spanish",
    "de": "German",
    "fr": "French",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
}
"""Languages with fixed messages; the answer is asked for in the customer's language by name."""
DEFAULT = "en"
MIN_CONFIDENCE = 0.90
MIN_LETTERS = 12

_lock = threading.Lock()
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float
    detected: bool
    """False when the message was too short or unclear and the fallback was used."""


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(NAMES))
    return identifier


def supported(code: str | None) -> str | None:
    """``code`` reduced to a supported language ("es-MX" -> "es"), or None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in NAMES else None


def detect(text: str, *, hint: str | None = None) -> Detection:
    fallback = supported(hint) or DEFAULT
    if len(_LETTERS.findall(text or "")) < MIN_LETTERS:
        return Detection(fallback, 0.0, False)
    with _lock:  # the identifier keeps per-call state
        code, probability = _identifier().classify(text)
    if probability < MIN_CONFIDENCE:
        return Detection(fallback, float(probability), False)
    return Detection(str(code), float(probability), True)


@cache
def _messages(language: str) -> dict[str, str]:
    path = PROMPTS_DIR / "messages" / f"{language}.json"
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def message(key: str, language: str | None = None, **values: object) -> str:
    """A fixed message (abstention, handoff, errors, clarifying question) in ``language``."""
    text = _messages(supported(language) or DEFAULT).get(key) or _messages(DEFAULT)[key]
    return text.format(**values) if values else text


def join_options(options: list[str], language: str | None) -> str:
    """ "A, B or C" with the language's word for "or"."""
    if len(options) <= 1:
        return "".join(options)
    return f"{', '.join(options[:-1])} {message('or', language)} {options[-1]}"
