"""PDF: text per page with pypdf, organised by the PDF's outline (bookmarks) when it has one.

With an outline, each bookmark opens a section whose path is the bookmark's chain of parents.
A bookmark only names a page, so the split inside that page is placed where the bookmark's
title appears in the page text (at a line start if possible); when the title cannot be found,
the section starts where the previous one stopped. Without an outline, each page is a section
with the path ``("Page N",)``, so a citation can still point at the page.

pypdf raises many exception types on damaged files (its own, but also ``KeyError``,
``ValueError``, ``AssertionError`` and more from deep inside), so calls into it are wrapped and
every failure becomes one readable :class:`IngestionError`.
"""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import DependencyError
from pypdf.generic import Destination

from ingestion.parse.detect import PDF
from ingestion.parse.sections import clean_heading, clean_text
from ingestion.parse.titles import title_from_filename
from ingestion.types import IngestionError, ParsedDocument, Section

logger = logging.getLogger(__name__)

ENCRYPTED_MESSAGE = (
    "The PDF is encrypted with a password. Remove the password (for example by printing it to a "
    "new PDF) and upload it again."
)

# Bounds for hostile or broken outlines (pypdf already stops at cycles).
_MAX_OUTLINE_ENTRIES = 5000
_MAX_OUTLINE_DEPTH = 16


@dataclass(frozen=True)
class _OutlineEntry:
    path: tuple[str, ...]
    page: int


def parse_pdf(data: bytes, *, filename: str) -> ParsedDocument:
    """Extract the text of the PDF ``data``.

    Raises :class:`IngestionError` when the file is damaged, or encrypted with a password other
    than the empty one (PDFs that only restrict printing or copying open normally).
    """
    reader = _open(data)
    page_texts = _page_texts(reader)
    outline = _outline(reader, page_count=len(page_texts))
    if outline:
        sections = _sections_from_outline(page_texts, outline)
    else:
        sections = _sections_by_page(page_texts)
    return ParsedDocument(
        title=_title(reader) or title_from_filename(filename),
        sections=sections,
        mime_type=PDF,
        metadata={"page_count": len(page_texts), "has_outline": bool(outline)},
    )


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
    except Exception as exc:  # see the module docstring
        raise _unreadable(exc) from exc
    if reader.is_encrypted:
        _decrypt(reader)
    return reader


def _decrypt(reader: PdfReader) -> None:
    try:
        opened = reader.decrypt("")
    except DependencyError as exc:
        raise IngestionError(
            "The PDF is encrypted with AES, which this server cannot open: the Python package "
            "'cryptography' is not installed."
        ) from exc
    except Exception as exc:
        raise _unreadable(exc) from exc
    if not opened:
        raise IngestionError(ENCRYPTED_MESSAGE)


def _unreadable(exc: Exception) -> IngestionError:
    reason = str(exc).strip().rstrip(".") or type(exc).__name__
    return IngestionError(f"The PDF could not be read: {reason}. The file may be damaged or incomplete.")


def _page_texts(reader: PdfReader) -> list[str]:
    """The text of every page; a page that fails is logged and read as empty."""
    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise _unreadable(exc) from exc
    texts: list[str] = []
    failures: list[Exception] = []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(clean_text(page.extract_text()))
        except Exception as exc:
            logger.warning("Could not extract text from PDF page %d: %r", number, exc)
            failures.append(exc)
            texts.append("")
    if failures and not any(texts):
        raise _unreadable(failures[0])
    return texts


def _title(reader: PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a damaged info dictionary only costs us the title
        return ""
    return clean_heading(title) if isinstance(title, str) else ""


def _outline(reader: PdfReader, *, page_count: int) -> list[_OutlineEntry]:
    """Bookmarks that point at a page, in page order (outline order within a page)."""
    entries: list[_OutlineEntry] = []
    try:
        _collect_outline(reader, reader.outline, (), entries, depth=0)
    except Exception as exc:  # a broken outline: fall back to pages
        logger.warning("Ignoring unreadable PDF outline: %r", exc)
        return []
    in_range = [entry for entry in entries if 0 <= entry.page < page_count]
    return sorted(in_range, key=lambda entry: entry.page)


def _collect_outline(
    reader: PdfReader,
    items: Sequence[object],
    parents: tuple[str, ...],
    entries: list[_OutlineEntry],
    *,
    depth: int,
) -> None:
    # pypdf gives a flat list per level; a nested list holds the children of the item before it.
    previous = parents
    for item in items:
        if len(entries) >= _MAX_OUTLINE_ENTRIES:
            return
        if isinstance(item, list):
            if depth < _MAX_OUTLINE_DEPTH:
                _collect_outline(reader, item, previous, entries, depth=depth + 1)
            continue
        if not isinstance(item, Destination):
            continue
        title = clean_heading(str(item.title or ""))
        if not title:
            continue
        previous = (*parents, title)
        page = reader.get_destination_page_number(item)
        if page is not None:
            entries.append(_OutlineEntry(path=previous, page=page))


def _sections_by_page(page_texts: list[str]) -> list[Section]:
    return [
        Section(path=(f"Page {number}",), text=text) for number, text in enumerate(page_texts, start=1) if text.strip()
    ]


def _sections_from_outline(page_texts: list[str], outline: list[_OutlineEntry]) -> list[Section]:
    by_page: dict[int, list[_OutlineEntry]] = defaultdict(list)
    for entry in outline:
        by_page[entry.page].append(entry)
    sections: list[Section] = []
    path: tuple[str, ...] = ()
    for page, text in enumerate(page_texts):
        cursor = 0
        for entry in by_page.get(page, []):
            start = _find_title(text, entry.path[-1], cursor)
            if start is not None:
                _append(sections, path, text[cursor:start])
                cursor = start
            path = entry.path
        _append(sections, path, text[cursor:])
    return sections


def _find_title(text: str, title: str, start: int) -> int | None:
    """Where ``title`` begins in ``text`` at or after ``start``, ignoring case and spacing."""
    words = title.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(word) for word in words)
    at_line_start = re.compile(r"(?im)^[ \t]*(" + pattern + ")")
    anywhere = re.compile(pattern, re.I)
    match = at_line_start.search(text, start)
    if match is not None:
        return match.start(1)
    match = anywhere.search(text, start)
    return match.start() if match is not None else None


def _append(sections: list[Section], path: tuple[str, ...], text: str) -> None:
    """Add ``text`` under ``path``, joining it to the previous section when the path is the same."""
    text = text.strip()
    if not text:
        return
    if sections and sections[-1].path == path:
        text = sections.pop().text + "\n\n" + text
    sections.append(Section(path=path, text=text))
