from __future__ import annotations

import itertools
import random

from ingestion.split import SplitConfig, Splitter, breadcrumb
from ingestion.types import ParsedDocument, Section
from tests.ingestion.bundled_models import embedder, splitter


def _doc(*sections: Section, title: str = "Lumen Hub") -> ParsedDocument:
    return ParsedDocument(title=title, sections=list(sections), mime_type="text/markdown")


def test_short_section_is_one_chunk_with_its_heading_path() -> None:
    doc = _doc(Section(("Setup", "Wi-Fi"), "Hold the button for five seconds until the light turns blue." * 2))
    [chunk] = splitter().split(doc)
    assert chunk.section_path == ("Setup", "Wi-Fi")
    assert chunk.context == "Lumen Hub > Setup > Wi-Fi"
    assert chunk.embed_text.startswith("Lumen Hub > Setup > Wi-Fi\n")
    assert chunk.position == 0


def test_no_chunk_exceeds_the_model_limit_even_for_pathological_text() -> None:
    rng = random.Random(7)
    words = ["router", "firmware", "Zigbee", "E42", "reset", "configuration", "überprüfung", "ångström"]
    long_prose = " ".join(rng.choice(words) for _ in range(6000))
    no_spaces = "x" * 5000  # a single "word" far past the limit
    table = "\n".join("| " + " | ".join(f"cell{r}{c}" for c in range(12)) + " |" for r in range(200))
    deep_path = tuple(f"Heading level {i} with several words" for i in range(6))
    doc = _doc(Section(("Prose",), long_prose), Section(("Blob",), no_spaces), Section(deep_path, table))
    chunks = splitter().split(doc)
    tokenizer = embedder().tokenizer
    limit = embedder().max_tokens
    assert len(chunks) > 30
    for chunk in chunks:
        n = len(tokenizer.encode(chunk.embed_text, add_special_tokens=True))
        assert n <= limit, (chunk.position, n)
        assert n == chunk.token_count
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # Nothing is lost: every word of the prose appears in some chunk.
    joined = " ".join(c.text for c in chunks if c.section_path == ("Prose",))
    assert set(long_prose.split()) <= set(joined.split())


def test_long_sections_overlap_between_consecutive_chunks() -> None:
    sentences = [f"Sentence number {i} explains step {i} of pairing the bulb." for i in range(200)]
    doc = _doc(Section(("Pairing",), " ".join(sentences)))
    chunks = splitter().split(doc)
    assert len(chunks) >= 3
    for a, b in itertools.pairwise(chunks):
        tail = a.text.split()[-4:]
        assert " ".join(tail) in b.text, "consecutive chunks should share some overlapping text"


def test_tiny_sibling_sections_are_merged_but_distinct_parents_are_not() -> None:
    doc = _doc(
        Section(("Billing", "Plans"), "Basic is free."),
        Section(("Billing", "Invoices"), "Invoices are emailed monthly."),
        Section(("Privacy",), "We never sell your data."),
    )
    chunks = splitter().split(doc)
    assert len(chunks) == 2
    assert "Basic is free." in chunks[0].text and "Invoices are emailed monthly." in chunks[0].text
    assert chunks[1].section_path == ("Privacy",)


def test_breadcrumb_does_not_repeat_the_title() -> None:
    assert breadcrumb("Warranty", ["Warranty", "Claims"]) == "Warranty > Claims"
    assert breadcrumb("", []) == ""


def test_target_larger_than_limit_is_rejected() -> None:
    try:
        Splitter(embedder().tokenizer, SplitConfig(max_tokens=128, target_tokens=200))
    except ValueError:
        return
    raise AssertionError("expected ValueError")
