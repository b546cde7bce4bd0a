"""Condensing a follow-up over the conversation: the referent reaches the retrieval query."""

from __future__ import annotations

from typing import Any

import pytest

from resolvo.answers import condense
from resolvo.answers.engine import Turn
from resolvo.knowledge.selectors import chunks_search

WARRANTY_TALK = (
    Turn("user", "What does the Lumen warranty cover for the hub?"),
    Turn("assistant", "Manufacturing defects for two years from delivery [1]."),
)


def test_a_pronoun_follow_up_carries_the_earlier_topic() -> None:
    query = condense.condense("How do I make a claim on it?", WARRANTY_TALK, mode="carry")
    assert query.startswith("How do I make a claim on it?")
    assert "warranty" in query.lower()


def test_a_question_that_stands_alone_is_left_as_typed() -> None:
    question = "How do I set up Wi-Fi on an Android phone?"
    assert condense.condense(question, WARRANTY_TALK, mode="carry") == question
    assert condense.condense("Does it cover water damage?", (), mode="carry") == "Does it cover water damage?"


@pytest.mark.django_db
def test_the_carried_query_retrieves_the_referent_document(lumen_kb: Any) -> None:
    history = (
        Turn("user", "How do I connect the hub to Wi-Fi on my iPhone?"),
        Turn("assistant", "Open the Lumen app and follow the steps [1]."),
    )
    question = "Which permissions does it need?"
    query = condense.condense(question, history, mode="carry")
    carried = chunks_search(knowledge_base=lumen_kb, query=query, limit=3)
    assert carried[0].source == "wifi-setup-ios.md"


@pytest.mark.django_db
def test_llm_mode_falls_back_to_carrying_when_the_model_is_down(llm_down: Any) -> None:
    from resolvo.answers.services import llm_backend

    query = condense.condense(
        "How do I make a claim on it?", WARRANTY_TALK, mode="llm", backend=llm_backend(), timeout_s=2
    )
    assert query == condense.carry("How do I make a claim on it?", WARRANTY_TALK)
    assert "warranty" in query.lower()
