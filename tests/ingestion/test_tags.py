"""Document tags: what a person types is checked, what a source says is turned into tags."""

from __future__ import annotations

import pytest

from ingestion.parse import parse_bytes
from ingestion.tags import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    TagError,
    slugify_tag,
    tags_for_url,
    tags_from_metadata,
    validate_tags,
    validate_url_rules,
)


def test_typed_tags_are_lowercased_deduplicated_and_sorted() -> None:
    assert validate_tags(["TV", " galaxy-s10 ", "tv"]) == ["galaxy-s10", "tv"]
    assert validate_tags("tv, galaxy-s10,,") == ["galaxy-s10", "tv"]
    assert validate_tags(["télé"]) == ["télé"]  # letters of any script
    assert validate_tags(None) == [] and validate_tags("") == []


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["Galaxy S10"], "not a valid tag.*'galaxy-s10'"),
        (["tv!"], "not a valid tag"),
        (["-tv"], "not a valid tag"),
        (["a--b"], "not a valid tag"),
        (["under_score"], "not a valid tag"),
        ([""], "cannot be empty"),
        (["x" * (MAX_TAG_LENGTH + 1)], "at most 64"),
        ([f"t{i}" for i in range(MAX_TAGS + 1)], "at most 20"),
        ([3], "must be strings"),
        ({"tv": 1}, "must be a list"),
    ],
)
def test_malformed_tags_are_refused_with_a_reason(tags: object, message: str) -> None:
    with pytest.raises(TagError, match=message):
        validate_tags(tags)


def test_free_text_becomes_a_tag() -> None:
    assert slugify_tag("Samsung Galaxy S10 e-manual (AT&T, 2020)") == "samsung-galaxy-s10-e-manual-at-t-2020"
    assert slugify_tag("  Smart_TV / Remote ") == "smart-tv-remote"
    assert slugify_tag("!!!") == ""
    assert len(slugify_tag("word " * 40)) <= MAX_TAG_LENGTH and not slugify_tag("word " * 40).endswith("-")


def test_front_matter_tags_tag_product_and_manual_keys() -> None:
    doc = parse_bytes(
        b"---\ntitle: Battery\ntags: [Galaxy S10, battery]\nproduct: Galaxy S10\n---\n# Battery\nCharge it.\n",
        filename="battery.md",
        max_bytes=10_000,
    )
    assert tags_from_metadata(doc.metadata) == ["battery", "galaxy-s10"]
    assert tags_from_metadata({"tag": "tv, remote"}) == ["remote", "tv"]
    # The E-Manual corpus's one-line JSON front matter names the manual.
    emanual = parse_bytes(
        b'---\n{"doc_id": "smarttv__section_1", "manual": "Samsung Smart TV / Smart Remote e-manual"}\n---\n# Hi\nx\n',
        filename="smarttv__section_1.md",
        max_bytes=10_000,
    )
    assert tags_from_metadata(emanual.metadata) == ["samsung-smart-tv-smart-remote-e-manual"]
    # Values that are not text never fail a document.
    assert tags_from_metadata({"tags": {"a": 1}, "manual": None, "title": "Setup"}) == []


def test_url_rules_tag_pages_by_path_prefix() -> None:
    rules = validate_url_rules({"/docs/tv/": "tv", "/docs/": ["docs"], "/phones/s10": ["galaxy-s10"]})
    assert rules == {"/docs/tv/": ["tv"], "/docs/": ["docs"], "/phones/s10": ["galaxy-s10"]}
    assert tags_for_url("https://help.example/docs/tv/setup?x=1", rules) == ["docs", "tv"]
    assert tags_for_url("https://help.example/docs/washer", rules) == ["docs"]
    assert tags_for_url("https://help.example/blog/docs/tv/", rules) == []
    with pytest.raises(TagError, match="starting with '/'"):
        validate_url_rules({"docs/tv": ["tv"]})
    with pytest.raises(TagError, match="not a valid tag"):
        validate_url_rules({"/docs/": ["Bad Tag"]})
    with pytest.raises(TagError, match="must be an object"):
        validate_url_rules(["/docs/"])
