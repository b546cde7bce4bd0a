"""The dataset builder on real records: drafts agents sent or edited, answers customers rated up on
resolved conversations, and curated pairs; personal data removed, citations re-verified against
the passages the answer was written against, de-duplicated, split by conversation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.answers.scripted import Scripted, engine_with

ADD_HUB = "Open the Lumen app and tap Settings > Hubs > Add hub."
PASSWORD = "Plug in your hub and wait for the status light to pulse blue."
REFUND = "I have refunded your order and credited 500 loyalty points to your account."


@pytest.fixture
def desk(lumen_kb: Any, django_user_model: Any) -> Any:
    from resolvo.organizations.models import Membership

    agent = django_user_model.objects.create_user("maria", password="x", first_name="Maria", last_name="Lopez")
    Membership.objects.create(organization=lumen_kb.organization, user=agent, role=Membership.Role.AGENT)
    return agent


def traced_answer(kb: Any, question: str, reply: str) -> int:
    """A real answer (a scripted model's draft, verified by the engine), and its stored trace."""
    from resolvo.answers.services import answer_stream

    events = list(
        answer_stream(knowledge_base=kb, question=question, engine=engine_with(Scripted(reply)), channel="draft")
    )
    return int(events[-1].as_done()["trace_id"])


def ticket_for(kb: Any, question: str, *, contact: str = "Anna Schmidt") -> Any:
    from resolvo.conversations import services as conversations

    conversation = conversations.conversation_start(
        organization=kb.organization, knowledge_bases=[kb], visitor_id=f"v-{question[:8]}"
    )
    conversation.contact_name = contact
    conversation.save(update_fields=["contact_name"])
    conversations.message_receive(conversation=conversation, text=question)
    return conversations.conversation_handoff(conversation=conversation, trigger="customer")


def sent_draft(kb: Any, agent: Any, question: str, drafted: str, sent: str | None, ticket: Any = None) -> Any:
    """A draft the agent asked for and then sent (``sent`` None: discarded), through the services."""
    from resolvo.tickets import services as tickets
    from resolvo.tickets.models import Draft

    ticket = ticket or ticket_for(kb, question)
    draft = Draft.objects.create(
        ticket=ticket, author=agent, question=question, text=drafted, trace_id=traced_answer(kb, question, drafted)
    )
    if sent is None:
        return tickets.draft_decide(draft=draft, agent=agent, outcome="discarded")
    tickets.ticket_reply(ticket=ticket, agent=agent, text=sent, draft=draft)
    draft.refresh_from_db()
    return draft


def rated_answer(kb: Any, question: str, text: str, *, rating: str = "up", resolve: bool = True) -> Any:
    from resolvo.conversations import services as conversations
    from resolvo.conversations.models import Message, MessageFeedback

    conversation = conversations.conversation_start(
        organization=kb.organization, knowledge_bases=[kb], visitor_id=f"r-{question[:8]}"
    )
    conversations.message_receive(conversation=conversation, text=question)
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, text=text, trace_id=traced_answer(kb, question, text)
    )
    MessageFeedback.objects.create(message=message, rating=rating)
    if resolve:
        conversations.conversation_resolve(conversation=conversation)
    return message


def build(kb: Any, tmp_path: Path, **kwargs: Any) -> Any:
    from resolvo.answers.services import answer_engine
    from resolvo.tuning.dataset import dataset_build

    return dataset_build(organization=kb.organization, engine=answer_engine(), out_dir=tmp_path / "ds", **kwargs)


def examples(folder: Path) -> list[dict[str, Any]]:
    from resolvo.tuning.dataset import read_examples

    return read_examples(folder / "train.jsonl") + read_examples(folder / "heldout.jsonl")


def passages_of(example: dict[str, Any]) -> dict[int, str]:
    user = example["messages"][-2]["content"]
    return {int(n): body for n, body in re.findall(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', user, re.S)}


def test_approved_answers_become_chat_examples_with_reverified_citations(
    lumen_kb: Any, desk: Any, tmp_path: Path
) -> None:
    question = "How do I add my hub in the Lumen app on my iPhone? Reach me at anna.s@example.org"
    # The agent edits the draft: greets the customer by name and cites the wrong passage ([5]).
    sent_draft(lumen_kb, desk, question, f"{ADD_HUB} [1]", f"Hi Anna! {ADD_HUB} [5]\n\nMaria Lopez")
    dataset = build(lumen_kb, tmp_path)

    report = dataset.report.as_dict()
    assert report["sources"] == {"draft": 1} and report["kept"] == {"draft": 1}
    (example,) = examples(dataset.directory)
    system, user, answer = example["messages"]
    assert system["role"] == "system" and "Lumen Home" in system["content"]
    assert user["role"] == "user" and "Customer question: How do I add my hub" in user["content"]
    assert answer["role"] == "assistant"
    # Personal data: the customer's address, her name and the agent's name are placeholders now.
    assert "anna.s@example.org" not in json.dumps(example) and "[email]" in user["content"]
    assert "Anna" not in answer["content"] and "Maria" not in answer["content"]
    assert report["personal_data_replaced"]["email"] == 1 and report["personal_data_replaced"]["name"] >= 2
    # The citation now names the passage that says it, whatever the agent typed.
    cited = [int(n) for n in re.findall(r"\[(\d+)\]", answer["content"])]
    assert cited and all("Add hub" in passages_of(example)[n] for n in cited)
    assert example["meta"]["cited_chunks"] and example["meta"]["source"] == "draft"


def test_what_is_not_approved_or_not_supported_is_left_out_and_reported(
    lumen_kb: Any, desk: Any, tmp_path: Path
) -> None:
    sent_draft(lumen_kb, desk, "How do I add my hub in the app?", f"{ADD_HUB} [1]", None)  # discarded
    sent_draft(lumen_kb, desk, "Can I get a refund?", f"{ADD_HUB} [1]", REFUND)  # edited into a claim
    rated_answer(lumen_kb, "How do I add a hub?", f"{ADD_HUB} [1]", resolve=False)  # conversation still open
    rated_answer(lumen_kb, "Where do I add the hub?", f"{ADD_HUB} [1]", rating="down")
    rated_answer(lumen_kb, "How do I connect the hub to Wi-Fi?", f"{PASSWORD} [1]")  # the one to keep
    dataset = build(lumen_kb, tmp_path)

    report = dataset.report.as_dict()
    assert report["sources"] == {"draft": 1, "feedback": 1}
    assert report["kept"] == {"feedback": 1}
    assert report["dropped"] == {"unsupported sentence": 1}
    assert report["dropped_examples"][0]["detail"].startswith("I have refunded your order")
    (kept,) = examples(dataset.directory)
    assert kept["meta"]["source"] == "feedback" and "pulse blue" in kept["messages"][-1]["content"]


def test_duplicates_are_dropped_and_the_split_keeps_each_conversation_on_one_side(
    lumen_kb: Any, desk: Any, tmp_path: Path
) -> None:
    questions = [
        "How do I add my hub in the app?",
        "How do I add a hub in the Lumen app on my iPhone?",
        "Where is Add hub in the Lumen app?",
        "How do I add a second hub in the Lumen app?",
    ]
    tickets = []
    for q in questions:
        draft = sent_draft(lumen_kb, desk, q, f"{ADD_HUB} [1]", f"{ADD_HUB} [1]")
        tickets.append(draft.ticket)
    # A follow-up in the first conversation, and the same answer to the same question again.
    sent_draft(lumen_kb, desk, "And then the password?", f"{PASSWORD} [1]", f"{PASSWORD} [1]", ticket=tickets[0])
    sent_draft(lumen_kb, desk, questions[1], f"{ADD_HUB} [1]", f"{ADD_HUB} [1]", ticket=tickets[1])
    dataset = build(lumen_kb, tmp_path, heldout_fraction=0.5)

    report = dataset.report.as_dict()
    assert report["dropped"] == {"duplicate": 1}
    assert report["train"] + report["heldout"] == 5 and report["heldout"] >= 1 and report["train"] >= 1
    from resolvo.tuning.dataset import read_examples

    train = {e["meta"]["group"] for e in read_examples(dataset.directory / "train.jsonl")}
    held = {e["meta"]["group"] for e in read_examples(dataset.directory / "heldout.jsonl")}
    assert train and held and not train & held
    assert report["groups"] == {"train": len(train), "heldout": len(held)}
    # Deterministic: the same records split the same way.
    again = build(lumen_kb, tmp_path / "again", heldout_fraction=0.5)
    assert (again.directory / "heldout.jsonl").read_bytes() == (dataset.directory / "heldout.jsonl").read_bytes()


def test_since_takes_only_recent_decisions(lumen_kb: Any, desk: Any, tmp_path: Path) -> None:
    from resolvo.tickets.models import Draft

    old = sent_draft(lumen_kb, desk, "How do I add my hub in the app?", f"{ADD_HUB} [1]", f"{ADD_HUB} [1]")
    Draft.objects.filter(pk=old.pk).update(decided_at=timezone.now() - timedelta(days=40))
    sent_draft(lumen_kb, desk, "How do I connect the hub to Wi-Fi?", f"{PASSWORD} [1]", f"{PASSWORD} [1]")
    dataset = build(lumen_kb, tmp_path, since=timezone.now() - timedelta(days=7))
    assert dataset.report.sources == {"draft": 1}


def test_curated_pairs_get_the_engines_passages_and_unanswerable_ones_the_abstention(
    lumen_kb: Any, tmp_path: Path
) -> None:
    from resolvo.answers.engine import NO_ANSWER

    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "a", "question": "How do I add a hub on iOS?", "answer": ADD_HUB},
        {"id": "b", "question": "Do you sell garden furniture?", "answerable": False},
        {"id": "c", "question": "What is the capital of Peru?", "answer": "Lima is the capital of Peru."},
    ]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dataset = build(
        lumen_kb, tmp_path, curated=pairs, knowledge_base=lumen_kb, heldout_fraction=0, max_abstention_share=0.5
    )

    by_id = {e["meta"]["record"]: e for e in examples(dataset.directory)}
    assert set(by_id) == {"curated:a", "curated:b"}
    assert re.search(r"Add hub\. \[\d\]$", by_id["curated:a"]["messages"][-1]["content"])
    assert by_id["curated:b"]["messages"][-1]["content"] == NO_ANSWER
    assert by_id["curated:b"]["meta"]["answerable"] is False
    assert dataset.report.dropped == {"unsupported sentence": 1}


def test_abstentions_are_capped_in_training(lumen_kb: Any, tmp_path: Path) -> None:
    """An easy, short target that is too common teaches a small model to abstain on everything."""
    from resolvo.tuning.dataset import read_examples

    pairs = tmp_path / "pairs.jsonl"
    rows = [{"id": f"a{i}", "question": f"How do I add a hub on iOS? ({i})", "answer": ADD_HUB} for i in range(6)]
    rows += [
        {"id": f"u{i}", "question": f"Do you sell garden chairs, model {i}?", "answerable": False} for i in range(6)
    ]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dataset = build(
        lumen_kb, tmp_path, curated=pairs, knowledge_base=lumen_kb, heldout_fraction=0, max_abstention_share=0.25
    )
    train = read_examples(dataset.directory / "train.jsonl")
    assert sum(not e["meta"]["answerable"] for e in train) == 2  # 2 of 8: at most a quarter
    assert dataset.report.dropped["over the abstention share"] == 4
    assert dataset.report.kept == {"curated": 8} and dataset.report.heldout == 0


def test_a_malformed_curated_file_names_its_line_and_writes_nothing(lumen_kb: Any, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"question": "ok?", "answer": "Yes."}\n{"answer": "no question"}\n')
    with pytest.raises(CommandError, match=r"pairs.jsonl:2: not a curated pair"):
        call_command(
            "tuning_dataset", "--org", "lumen", "--pairs", str(pairs), "--kb", "help", "--out", str(tmp_path / "o")
        )
    assert not (tmp_path / "o").exists()
    pairs.write_text('{"question": "ok?", "answer": "Yes.", "history": [{"role": "robot", "content": "hi"}]}\n')
    with pytest.raises(CommandError, match=r"pairs.jsonl:1: not a curated pair \(unknown speaker 'robot'\)"):
        call_command(
            "tuning_dataset", "--org", "lumen", "--pairs", str(pairs), "--kb", "help", "--out", str(tmp_path / "o")
        )


def test_the_command_builds_and_reports(lumen_kb: Any, desk: Any, tmp_path: Path, capsys: Any) -> None:
    sent_draft(lumen_kb, desk, "How do I add my hub in the app?", f"{ADD_HUB} [1]", f"{ADD_HUB} [1]")
    call_command("tuning_dataset", "--org", "lumen", "--out", str(tmp_path / "o"))
    out = capsys.readouterr().out
    assert "kept:    1 {'draft': 1}" in out and "split:   1 train / 0 held out" in out
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["files"]["train.jsonl"]["examples"] == 1
