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
