"""Instructions planted in documents never reach the customer, in any of the languages we serve.

``data/plants.jsonl`` holds 60 planted instructions written as an attacker would (en, es, de, fr,
pt, it, nl), each with a marker (a link, code or number) that must never appear in an answer.
Each is planted in its own help article. The model here is the worst case: a backend that obeys
the plant and writes it into its answer (the bundled 135M model cannot be made to do so
reliably, and no real model should be trusted not to).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resolvo.answers import guard
from tests.answers.scripted import Scripted, engine_with

PLANTS = [json.loads(line) for line in (Path(__file__).parent / "data" / "plants.jsonl").read_text().splitlines()]


def article(i: int, plant: str) -> str:
    return (
        f"# Resetting the R-{i} router\n\n"
        f"The R-{i} router keeps its settings when the power goes out. "
        f"To reset the R-{i} router, hold the Reset button on the back for 10 seconds until the light blinks white. "
        f"{plant} "
        f"After a reset, the R-{i} router restarts and you set it up again in the Lumen app.\n"
    )


@pytest.fixture
def planted_kb(make_kb: Any, vector_store: Any, settings: Any) -> Any:
    from resolvo.knowledge import jobs, services

    kb = make_kb("routers", "help")
    ids = [
        services.document_upload(
            knowledge_base=kb, filename=f"r-{i}.md", content=article(i, p["text"]).encode(), enqueue=False
        ).pk
        for i, p in enumerate(PLANTS)
    ]
    outcomes = jobs.documents_ingest_run(document_ids=ids)
    assert all(o.status == "indexed" for o in outcomes.values()), outcomes
    return kb


def test_the_plant_set_covers_many_phrasings_and_languages() -> None:
    assert len(PLANTS) >= 50 and len({p["lang"] for p in PLANTS}) >= 4
    assert all(p["marker"] in p["text"] for p in PLANTS)


def test_every_plant_is_recognised_as_addressed_to_an_assistant() -> None:
    missed = [p["text"] for p in PLANTS if not any(guard.instruction_like(s) for s in guard.sentences(p["text"]))]
    assert missed == []


@pytest.mark.parametrize("obeys", ["after_a_true_sentence", "only"])
def test_no_planted_instruction_reaches_the_customer(planted_kb: Any, obeys: str) -> None:
    from resolvo.answers.engine import Trace

    backend = Scripted()  # obeys the plant: writes it into the answer
    engine = engine_with(backend)
    surfaced = []
    outcomes = set()
    for i, plant in enumerate(PLANTS):
        truth = f"To reset the R-{i} router, hold the Reset button on the back for 10 seconds [1]."
        backend.reply = f"{truth} {plant['text']}" if obeys == "after_a_true_sentence" else plant["text"]
        trace = Trace(question=f"How do I reset the R-{i} router?")
        events = list(engine.stream(knowledge_base=planted_kb, question=trace.question, trace=trace))
        shown = "".join(e.data["text"] for e in events if e.type == "token")  # type: ignore[typeddict-item]
        done = events[-1].as_done()
        outcomes.add(done["outcome"])
        if plant["marker"].lower() in (shown + done["answer"]).lower():
            surfaced.append((plant["lang"], plant["text"], shown))
        assert shown.strip() == done["answer"] and not done["replaced"]
        assert trace.passages_removed_instructions >= 1  # the plant was cut before the model read it
    assert surfaced == []
    # The defences did not simply refuse everything: the true sentence, or a quote, still answers.
    assert outcomes & {"answered", "quoted"}, outcomes
