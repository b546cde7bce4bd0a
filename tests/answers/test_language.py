"""The customer's language: detected per message, the fixed messages in it, the answer asked in it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from resolvo.answers import language
from resolvo.answers.prompts import PROMPTS_DIR


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("¿Cómo restablezco el televisor a los ajustes de fábrica?", "es"),
        ("Wie kann ich den Fernseher auf die Werkseinstellungen zurücksetzen?", "de"),
        ("Comment réinitialiser le téléviseur aux paramètres d'usine ?", "fr"),
        ("Como faço para redefinir a televisão para as configurações de fábrica?", "pt"),
        ("How do I reset the TV to its factory settings?", "en"),
    ],
)
def test_the_language_of_a_message_is_detected(text: str, code: str) -> None:
    result = language.detect(text)
    assert result.language == code and result.detected


def test_a_message_too_short_to_tell_keeps_the_conversation_language() -> None:
    assert language.detect("ok", hint="de") == language.Detection("de", 0.0, False)
    assert language.detect("and HDMI?", hint="es-MX").language == "es"
    assert language.detect("ok", hint="xx").language == "en"  # unknown hint: English


def test_every_language_has_every_fixed_message_with_the_same_placeholders() -> None:
    files = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (PROMPTS_DIR / "messages").glob("*.json")}
    assert set(files) == set(language.NAMES)
    english = files["en"]
    for code, messages in files.items():
        assert set(messages) == set(english), code
        for key, text in messages.items():
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", english[key])), (code, key)
            assert text and (code == "en" or key == "or" or text != english[key]), (code, key)


def test_the_clarifying_question_lists_options_in_the_language() -> None:
    options = language.join_options(["Galaxy S10", "Smart TV", "Galaxy A50"], "es")
    assert (
        language.message("clarify", "es", options=options) == "¿A cuál te refieres: Galaxy S10, Smart TV o Galaxy A50?"
    )


def test_a_spanish_question_is_answered_with_spanish_fixed_messages(lumen_kb: Any) -> None:
    from resolvo.answers.services import answer_collect

    result = answer_collect(knowledge_base=lumen_kb, question="¿Quién ganó el mundial de fútbol de 1998 en Francia?")
    assert result.outcome == "abstained" and result.language == "es"
    assert result.answer == language.message("abstain", "es") and result.answer.startswith("Lo siento")
    too_long = answer_collect(knowledge_base=lumen_kb, question="¿Cómo conecto el concentrador? " * 100)
    assert too_long.error.startswith("Tu pregunta es demasiado larga")
