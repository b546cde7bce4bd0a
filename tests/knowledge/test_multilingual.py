"""Questions in other languages over English documents, through the real services and models: the
question's language brings in the multilingual vector; English questions keep the two-list
fusion; with the multilingual model switched off everything still works as before."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.embed import BUNDLED_MULTILINGUAL_E5 as DEFAULT_MULTILINGUAL
from resolvo.knowledge import jobs, services, vectors
from resolvo.knowledge.selectors import chunks_search

pytestmark = pytest.mark.django_db

PAGES = {
    "recording.md": "# Recording programs\nTo record the program you are watching, press the record button "
    "on the remote. Recordings are kept on the USB drive.",
    "picture.md": "# Picture quality\nIf the picture looks blurry or dark, open Picture settings and choose "
    "the Movie picture mode, then adjust brightness and contrast.",
    "headphones.md": "# Bluetooth headphones\nPair headphones from Sound output: put them in pairing mode and "
    "select them in the list of devices.",
    "timer.md": "# Sleep timer\nThe sleep timer turns the TV off after the time you choose, from 30 to 180 "
    "minutes. Set it under General, System Manager, Time.",
    "channels.md": "# Channel list\nEdit, reorder or delete channels from the channel list; lock channels "
    "with the PIN.",
    "network.md": "# Network settings\nConnect the TV to Wi-Fi or to a cable network; test the connection "
    "from Network status.",
}
QUESTIONS = [
    ("¿Cómo grabo el programa que estoy viendo?", "es", "recording.md"),
    ("Das Bild ist unscharf und dunkel, was kann ich tun?", "de", "picture.md"),
    ("Comment connecter un casque sans fil ?", "fr", "headphones.md"),
    ("¿Cómo apago la tele automáticamente después de un rato?", "es", "timer.md"),
]


def _ingest_pages(kb: Any) -> None:
    for name, text in PAGES.items():
        doc = services.document_upload(knowledge_base=kb, filename=name, content=text.encode(), enqueue=False)
        assert jobs.documents_ingest_run(document_ids=[doc.pk])[doc.pk].status == "indexed"


@pytest.fixture
def multilingual(settings: Any, vector_store: Any) -> Any:
    """The production default (the suite turns the multilingual vector off: it is slow to ingest)."""
    vectors.reset()
    settings.EMBEDDING_MULTILINGUAL = DEFAULT_MULTILINGUAL
    assert vectors.multilingual_embedder() is not None, "the default installs the bundled multilingual model"
    yield vectors.get_store()
    vectors.reset()


def test_a_question_in_another_language_retrieves_the_english_page(make_kb: Any, multilingual: Any) -> None:
    kb = make_kb()
    _ingest_pages(kb)
    gained = 0
    for question, language, expected in QUESTIONS:
        found = [c.source for c in chunks_search(knowledge_base=kb, query=question, limit=6, language=language)]
        english_only = [c.source for c in chunks_search(knowledge_base=kb, query=question, limit=6)]
        assert expected in found[:2], (question, found)
        assert found.index(expected) <= (english_only.index(expected) if expected in english_only else 6)
        gained += found.index(expected) < (english_only.index(expected) if expected in english_only else 6)
    assert gained >= 2  # the English models alone rank most of these pages lower
    [top] = chunks_search(knowledge_base=kb, query=QUESTIONS[0][0], limit=1, language="es")
    assert top.multilingual_similarity is not None
    assert len(top.vector) == vectors.embedder().dimension  # verification's vector is still all-MiniLM's
    english = chunks_search(knowledge_base=kb, query="How do I record a program?", limit=3, language="en")
    assert english[0].source == "recording.md"
    assert english[0].multilingual_similarity is None  # English questions don't run the second model


def test_with_the_multilingual_model_off_search_falls_back_to_two_lists(
    make_kb: Any, vector_store: Any, settings: Any
) -> None:
    settings.EMBEDDING_MULTILINGUAL = ""
    vectors.reset()
    assert vectors.multilingual_embedder() is None
    assert vectors.chunks_collection()[1] == 0  # a collection without the second vector
    kb = make_kb()
    _ingest_pages(kb)
    found = chunks_search(knowledge_base=kb, query=QUESTIONS[0][0], limit=3, language="es")
    assert found and all(c.multilingual_similarity is None for c in found)
    assert chunks_search(knowledge_base=kb, query="record the program", limit=1)[0].source == "recording.md"
