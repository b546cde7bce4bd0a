"""Plain text: one section, no headings (plain text has no reliable heading markup)."""

from __future__ import annotations

from ingestion.parse.detect import TEXT
from ingestion.parse.sections import SectionBuilder
from ingestion.parse.titles import title_from_filename
from ingestion.types import ParsedDocument


def parse_text(text: str, *, filename: str) -> ParsedDocument:
    """Wrap decoded ``text`` as a document titled after ``filename``."""
    builder = SectionBuilder()
    builder.text(text)
    return ParsedDocument(title=title_from_filename(filename), sections=builder.build(), mime_type=TEXT)
