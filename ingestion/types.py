"""Typed values passed between ingestion stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class IngestionError(Exception):
    """A problem with one document's content that a person can read and act on.

    The message is shown verbatim on the document row and in ``kb_status``; it must say what is
    wrong in plain words ("PDF is encrypted", "file is empty"), never a traceback.
    Permanent: retrying the same input gives the same error.
    """


class TransientError(Exception):
    """A failure that may succeed when retried (network timeout, 5xx, store unavailable)."""


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, in document order.

    ``path`` is the chain of headings above the text, outermost first ("Setup", "Wi-Fi"). An
    empty path means text before any heading.
    """

    path: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser extracted from one source."""

    title: str
    sections: list[Section]
    mime_type: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """A token-bounded piece of a document, ready to embed."""

    position: int
    text: str
    section_path: tuple[str, ...]
    context: str
    """Breadcrumb line ("Title > Section > Subsection") prepended when embedding."""
    token_count: int
    """Word pieces of ``embed_text`` including the model's special tokens."""

    @property
    def embed_text(self) -> str:
        """Text given to the embedding and lexical models: the breadcrumb gives it context."""
        if not self.context:
            return self.text
        return self.context + "\n" + self.text


@dataclass(frozen=True)
class SplitResult:
    """One document's chunks, and what the splitter had to change in its text to make them."""

    chunks: list[Chunk]
    notes: list[str] = field(default_factory=list)
    """Plain sentences for the person who uploaded the document, such as "2 words longer than 100
    characters were broken into pieces."; empty when the text went through unchanged."""
