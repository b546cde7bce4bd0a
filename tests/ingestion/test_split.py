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
    no_spaces = "".join(f"{i:04d}x" for i in range(1000))  # one 5000-character "word", far past the limit
    table = "\n".join("| " + " | ".join(f"cell{r}{c}" for c in range(12)) + " |" for r in range(200))
    deep_path = tuple(f"Heading level {i} with several words" for i in range(6))
    doc = _doc(Section(("Prose",), long_prose), Section(("Blob",), no_spaces), Section(deep_path, table))
    chunks = splitter().split(doc)
    tokenizer = embedder().tokenizer
    limit = embedder().max_tokens
    assert len(chunks) > 30
    for chunk in chunks:
        ids = tokenizer.encode(chunk.embed_text, add_special_tokens=True)
        assert len(ids) <= limit, (chunk.position, len(ids))
        assert len(ids) == chunk.token_count
        # No silent truncation inside the tokenizer either: text it reads as [UNK] is text lost.
        assert tokenizer.unk_token_id not in ids, chunk.text[:80]
    assert [c.position for c in chunks] == list(range(len(chunks)))
    # Nothing is lost: every word of the prose appears in some chunk, and the blob's chunks,
    # read without the spaces that broke it up, cover all of it.
    joined = " ".join(c.text for c in chunks if c.section_path == ("Prose",))
    assert set(long_prose.split()) <= set(joined.split())
    assert _covers(no_spaces, [c.text for c in chunks if c.section_path == ("Blob",)])


def _covers(whole: str, parts: list[str]) -> bool:
    """Whether ``parts``, in order and with spaces removed, are pieces of ``whole`` covering all of it."""
    covered = 0
    for part in (p.replace(" ", "") for p in parts):
        start = whole.find(part, max(0, covered - len(part)))
        if start == -1 or start > covered:
            return False
        covered = max(covered, start + len(part))
    return covered == len(whole)


def _unknown(text: str) -> bool:
    """Whether the model's tokenizer reads any of ``text`` as its unknown token."""
    tokenizer = embedder().tokenizer
    return tokenizer.unk_token_id in tokenizer.encode(text, add_special_tokens=True)


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


def test_a_5_mb_word_becomes_many_bounded_chunks_the_model_can_read() -> None:
    size = 5 * 1024 * 1024
    doc = _doc(Section(("Attachment",), "Encoded image follows. " + "x" * size))
    result = splitter().split_document(doc)
    assert len(result.chunks) > 1000
    assert max(c.token_count for c in result.chunks) <= embedder().max_tokens
    # Every character is still there (more, with the overlap between chunks), in words of at
    # most 100 characters that the tokenizer turns into real word pieces.
    assert sum(c.text.count("x") for c in result.chunks) >= size
    assert max(len(word) for c in result.chunks for word in c.text.split()) <= 100
    distinct = {c.embed_text for c in result.chunks}
    assert not any(_unknown(text) for text in distinct)
    assert result.notes == ["1 word longer than 100 characters was broken into pieces."]


def test_words_are_measured_as_the_tokenizer_sees_them() -> None:
    hangul = "가" * 51  # 51 syllables are 102 characters once the normalizer splits them into jamo
    accented = "e\u0301" * 60  # 120 characters, 60 once the accents are stripped
    url = "https://help.example.com/" + "/".join(f"section-{i}_page" for i in range(12)) + "?utm_source=newsletter"
    chinese = "路由器固件更新需要大约五分钟请不要断开电源" * 20  # no spaces: each ideograph is a word
    kept = f"{accented} {url} {chinese}"
    assert len(url) > 200 and _unknown(hangul) and not _unknown(f"{accented} {url}")

    result = splitter().split_document(_doc(Section(("Links",), kept)))
    assert result.notes == []
    assert all(c.text in kept for c in result.chunks)  # split, but no space added anywhere

    result = splitter().split_document(_doc(Section(("Korean",), f"Press {hangul} now")))
    assert not any(_unknown(c.embed_text) for c in result.chunks)
    assert "".join(result.chunks[0].text.split()) == f"Press{hangul}now"
    assert result.notes == ["1 word longer than 100 characters was broken into pieces."]


def test_a_heading_longer_than_a_chunk_is_shortened_visibly_and_noted() -> None:
    heading = " ".join(f"word{i}" for i in range(120))
    body = "\n\n".join(f"Paragraph {i} under the long heading." for i in range(50))
    doc = _doc(Section((heading,), body), Section((heading, "Details"), "More about it. " * 80))
    result = splitter().split_document(doc)
    tokenizer, limit = embedder().tokenizer, embedder().max_tokens
    assert result.chunks
    for chunk in result.chunks:
        assert chunk.token_count == len(tokenizer.encode(chunk.embed_text)) <= limit
        assert chunk.context.startswith("Lumen Hub > word0 word1 ")
        assert len(tokenizer.encode(chunk.context, add_special_tokens=False)) <= limit // 4
    first, last = result.chunks[0], result.chunks[-1]
    assert first.context.endswith("…") and first.section_path == (heading,)
    assert last.context.endswith("… > Details") and last.section_path == (heading, "Details")
    assert "Paragraph 49 under the long heading." in " ".join(c.text for c in result.chunks)
    [note] = result.notes
    assert note.startswith("A heading of 120 words was shortened to ") and note.endswith(" word pieces.")


def test_a_long_title_and_a_very_deep_path_are_shortened_too() -> None:
    title = " ".join(["Lumen Hub installation and troubleshooting guide"] * 20)
    result = splitter().split_document(_doc(Section(("Setup",), "Plug it in."), title=title))
    [chunk] = result.chunks
    assert chunk.context.endswith("… > Setup")
    [note] = result.notes
    assert note.startswith("The title of 120 words was shortened to ")

    deep = tuple(f"Level {i}" for i in range(60))  # too many parts to shorten each: cut as a whole
    result = splitter().split_document(_doc(Section(deep, "Plug it in.")))
    [chunk] = result.chunks
    assert chunk.context.startswith("Lumen Hub > Level 0 > Level 1") and chunk.context.endswith("…")
    assert chunk.token_count <= embedder().max_tokens
    assert result.notes == ["A heading path of 122 words was shortened to 64 word pieces."]


def test_ordinary_documents_come_through_unchanged_with_no_notes() -> None:
    doc = _doc(
        Section(("Setup", "Wi-Fi"), "Hold the button for five seconds until the light turns blue. " * 40),
        Section(("Billing",), "Invoices are emailed monthly."),
    )
    result = splitter().split_document(doc)
    assert result.notes == []
    assert result.chunks == splitter().split(doc)
    assert {c.context for c in result.chunks} == {"Lumen Hub > Setup > Wi-Fi", "Lumen Hub > Billing"}
