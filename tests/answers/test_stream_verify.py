"""Nothing unverified reaches the customer's screen: each sentence is shown only once verified."""

from __future__ import annotations

import re
from typing import Any

from tests.answers.scripted import Scripted, engine_with

QUESTION = "What does a blinking amber status light on the hub mean?"


def run(kb: Any, reply: str) -> tuple[list[str], dict[str, Any], Any]:
    from resolvo.answers.engine import Trace

    backend = Scripted(reply)
    trace = Trace(question=QUESTION)
    events = list(engine_with(backend).stream(knowledge_base=kb, question=QUESTION, trace=trace))
    tokens = [e.data["text"] for e in events if e.type == "token"]  # type: ignore[typeddict-item]
    return tokens, dict(events[-1].as_done()), trace


def test_only_supported_sentences_are_shown_each_with_its_citation(lumen_kb: Any) -> None:
    reply = (
        "Sure! A blinking amber light means the hub is connected to Wi-Fi but has no internet [1]. "
        "Tap the Reboot Cloud Link button in the Lumen app to fix it [1]. "
        "Check your router's internet connection [1]."
    )
    tokens, done, trace = run(lumen_kb, reply)
    shown = "".join(tokens)
    assert "Reboot Cloud Link" not in shown, "an invented control never appears, not even for a moment"
    assert "no internet" in shown and "Check your router" in shown
    assert shown.strip() == done["answer"] and done["replaced"] is False and done["outcome"] == "answered"
    for sentence in re.split(r"(?<=\])\s+", shown.strip()):
        assert re.search(r"\[\d\]$", sentence), sentence  # every shown sentence carries its citation
    assert shown.startswith("Sure!"), "a short lead-in goes out with the first supported sentence"
    assert any(r["why"] == "unsupported" and "Reboot Cloud Link" in r["text"] for r in trace.rejected)
    assert "Reboot Cloud Link" in trace.draft  # kept for the admin, never shown
    assert "first_sentence" in done["timings"]


def test_a_draft_that_never_holds_up_is_stopped_early_and_a_passage_quoted(lumen_kb: Any) -> None:
    invented = " ".join(f"Press the Magic Button {i} on the Lumen Tower for {i} minutes [1]." for i in range(2, 12))
    backend = Scripted(invented)
    from resolvo.answers.engine import Trace

    trace = Trace(question=QUESTION)
    events = list(engine_with(backend).stream(knowledge_base=lumen_kb, question=QUESTION, trace=trace))
    tokens = [e.data["text"] for e in events if e.type == "token"]  # type: ignore[typeddict-item]
    done = events[-1].as_done()
    assert backend.delivered < len(invented.split()) / 2, "generation stopped after two rejected sentences"
    assert len(tokens) == 1 and "Magic Button" not in tokens[0]
    assert done["outcome"] in {"quoted", "abstained"} and tokens[0] == done["answer"]
    if done["outcome"] == "quoted":
        assert "amber" in done["answer"].lower() and re.search(r"\[\d\]$", done["answer"])


def test_a_link_no_passage_contains_is_never_shown(lumen_kb: Any) -> None:
    reply = (
        "A blinking amber light means the hub is connected to Wi-Fi but has no internet [1]. "
        "For help, visit lumen-support-desk.example or call +1 555 123 4567 [1]."
    )
    tokens, done, trace = run(lumen_kb, reply)
    assert done["outcome"] == "answered"
    assert "lumen-support-desk" not in "".join(tokens) and "555" not in "".join(tokens)
    assert any(r["why"] == "contact" for r in trace.rejected)


def test_a_lead_in_to_a_list_is_never_left_hanging(lumen_kb: Any) -> None:
    # "... follow these steps:" with no step that holds up after it would be a fragment.
    tokens, done, _ = run(lumen_kb, "Here is what a blinking amber status light on the hub means: [1]")
    assert not re.sub(r"\s*\[\d\]", "", done["answer"]).endswith(":"), done["answer"]
    tokens, done, _ = run(
        lumen_kb,
        "Here is what a blinking amber status light on the hub means: [1]\n"
        "The hub is connected to Wi-Fi but has no internet [1].",
    )
    shown = "".join(tokens)
    assert shown.index("means:") < shown.index("no internet"), shown  # with the step that followed it


def test_numbered_steps_keep_a_line_each(lumen_kb: Any) -> None:
    reply = (
        "A blinking amber light means the hub is connected to Wi-Fi but has no internet [1].\n"
        "1. Check your router's internet connection [1].\n"
        "2. Restart your router, and check that other devices in your home can get online [1]."
    )
    tokens, done, trace = run(lumen_kb, reply)
    assert "".join(tokens).strip() == done["answer"]  # shown as it stands, line breaks included
    lines = done["answer"].split("\n")
    assert [line[:3] for line in lines[1:]] == ["1. ", "2. "], (done["answer"], trace.rejected)
