"""``manage.py evaluate`` on conversations: query modes, answerability labels, the gate's outcomes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from resolvo.answers.evaluation import load_questions

IPHONE = [
    {"speaker": "user", "text": "How do I connect the hub to Wi-Fi on my iPhone?"},
    {"speaker": "agent", "text": "Open the Lumen app and follow the steps."},
]
ROWS = [
    {  # MTRAG's shape: the conversation ends with the current turn, ``question`` is the rewrite
        "id": "c1<::>2",
        "question": "Which permissions does the Lumen app need on an iPhone to set up the hub?",
        "question_last_turn": "Which permissions does it need?",
        "conversation": [*IPHONE, {"speaker": "user", "text": "Which permissions does it need?"}],
        "gold_doc_ids": ["wifi-setup-ios"],
        "answerability": "answerable",
    },
    {
        "id": "c2<::>1",
        "question": "Who won the 1998 football world cup final?",
        "conversation": [{"speaker": "user", "text": "Who won the 1998 football world cup final?"}],
        "gold_doc_ids": [],
        "answerability": "unanswerable",
    },
    {
        "id": "c3<::>1",
        "question": "How do I connect it to the Wi-Fi from my phone?",
        "conversation": [{"speaker": "user", "text": "How do I connect it to the Wi-Fi from my phone?"}],
        "gold_doc_ids": ["wifi-setup-ios", "wifi-setup-android"],
        "answerability": "underspecified",
    },
    {"id": "e1", "question": "How long is the bulb warranty?", "gold_doc_ids": ["warranty"]},
]


def write(tmp_path: Path) -> Path:
    path = tmp_path / "conversations.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    return path


def test_conversation_records_split_into_history_current_turn_and_rewrite(tmp_path: Path) -> None:
    q = load_questions(write(tmp_path))
    assert [t.role for t in q[0].history] == ["user", "assistant"]
    assert q[0].last_turn == "Which permissions does it need?" and q[0].typed == q[0].last_turn
    assert q[0].rewrite.startswith("Which permissions does the Lumen app need")
    assert q[1].rewrite == "" and q[1].history == () and not q[1].answerable
    assert q[2].answerability == "underspecified" and not q[2].answerable
    assert q[3].last_turn == "" and q[3].typed == "How long is the bulb warranty?" and q[3].answerable


@pytest.mark.django_db
def test_retrieval_only_reports_query_modes_and_gate_outcomes_by_label(lumen_kb: Any, tmp_path: Path) -> None:
    out = io.StringIO()
    args = ["--org", "lumen", "--kb", "help", str(write(tmp_path)), "--retrieval-only", "--json"]
    call_command("evaluate", *args, "--condense", "carry", stdout=out)
    data = json.loads(out.getvalue())
    assert data["questions"] == 4 and data["query"] == "condensed" and data["condense"] == "carry"
    modes = data["query_modes"]
    assert modes["tasks_with_rewrite"] == 1
    assert modes["recall@5_condensed"] == modes["recall@5_rewrite"] == 1.0
    assert modes["condensed_over_rewrite"] == 1.0
    gate = data["gate"]
    assert gate["by_label"]["unanswerable"] == {"abstain": 1}
    assert gate["by_label"]["underspecified"] == {"clarify": 1}
    assert gate["by_label"]["answerable"] == {"answer": 2}
    assert gate["abstain_unanswerable"] == 1.0 and gate["abstain_answerable"] == 0.0
    assert data["recall@5"] == 1.0  # the E-Manual-style record and the conversation both count


@pytest.mark.django_db
def test_query_last_retrieves_with_the_typed_turn_alone(lumen_kb: Any, tmp_path: Path) -> None:
    out = io.StringIO()
    args = ["--org", "lumen", "--kb", "help", str(write(tmp_path)), "--retrieval-only", "--json", "--limit", "1"]
    call_command("evaluate", *args, "--query", "last", stdout=out)
    data = json.loads(out.getvalue())
    assert data["query"] == "last"
    assert data["recall@5"] == data["query_modes"]["recall@5_last"]
