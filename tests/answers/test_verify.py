from __future__ import annotations

from functools import lru_cache

import numpy as np

from resolvo.answers.verify import Thresholds, sentences_of, verify
from tests.ingestion.bundled_models import embedder

PASSAGES = [
    "Lumen Hub 2 > Factory reset\nHold the pinhole button on the back for 15 seconds until the ring flashes amber.",
    "Billing > Invoices\nInvoices are emailed on the first day of each month and can be downloaded as PDF.",
]


@lru_cache(maxsize=1)
def passage_vectors() -> np.ndarray:
    return embedder().embed_documents(PASSAGES)


def check(answer: str):  # type: ignore[no-untyped-def]
    return verify(
        answer,
        passages=PASSAGES,
        passage_vectors=passage_vectors(),
        embed=embedder().embed_documents,
        thresholds=Thresholds(),
    )


def test_supported_citation_is_kept_and_wrong_one_dropped() -> None:
    result = check("To factory reset, hold the pinhole button for 15 seconds until the ring flashes amber [2].")
    [sentence] = result.sentences
    assert sentence.cited == [2] and sentence.kept == []
    assert sentence.inferred == [1], "the passage that does support it is attached instead"
    assert result.used == [1] and result.dropped == [2]


def test_correct_citation_survives() -> None:
    result = check("Invoices are emailed on the first day of each month [2]. You can download them as PDF [2].")
    assert result.used == [2] and result.dropped == [] and result.supported_fraction == 1.0


def test_unsupported_answer_has_low_support() -> None:
    result = check("Our office in Berlin is open on Saturdays from nine until noon [1].")
    assert result.used == [] and result.dropped == [1] and result.supported_fraction == 0.0


def test_sentences_keep_their_trailing_citations() -> None:
    assert sentences_of("First step [1]. Second step [2][3].\n- a list item") == [
        "First step [1].",
        "Second step [2][3].",
        "- a list item",
    ]


def test_an_invented_control_name_is_not_supported_by_a_passage_with_the_same_words() -> None:
    passages = [
        "Clock > Time\nTo change the current time, tap the time shown at the top and use the button to adjust it.",
        "Clock > Time\nTap Change Current Time, then set the hour and minutes.",
    ]
    vectors = embedder().embed_documents(passages)
    run = lambda answer: verify(  # noqa: E731
        answer, passages=passages, passage_vectors=vectors, embed=embedder().embed_documents, thresholds=Thresholds()
    )
    invented = run("Tap the Change Current Time button to set the time [1].").sentences[0]
    assert invented.kept == [] and invented.inferred != [1], "passage 1 never names that button"
    real = run("Tap Change Current Time, then set the hour and minutes [2].").sentences[0]
    assert real.kept == [2]


def test_a_number_the_passage_does_not_give_is_not_supported() -> None:
    result = check("Hold the pinhole button on the back for 30 seconds until the ring flashes amber [1].")
    assert not result.sentences[0].supported
    assert check("Hold the pinhole button on the back for 15 seconds until the ring flashes amber [1].").used == [1]
