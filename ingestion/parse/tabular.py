"""CSV and TSV files.

Two layouts are understood:

* FAQ: a header row with a question column and an answer column (``question``/``answer``,
  ``q``/``a``, ...). Each row becomes a section titled by its question, under its category when
  a ``category``/``topic``/``section`` column exists.
* Anything else: one section with a line per row. When the first row looks like a header, each
  value is labelled with its column name (``Plan: Pro | Price: 20``), so a row still makes
  sense when a chunk boundary separates it from the header.

The module is not called ``csv`` so that it never shadows the standard library module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ingestion.parse.detect import CSV, TSV
from ingestion.parse.sections import SectionBuilder, clean_heading
from ingestion.parse.titles import title_from_filename
from ingestion.types import IngestionError, ParsedDocument, Section

_QUESTION_NAMES = frozenset({"question", "questions", "q", "faq"})
_ANSWER_NAMES = frozenset({"answer", "answers", "a", "response", "reply"})
_CATEGORY_NAMES = frozenset({"category", "topic", "section"})
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class _FaqColumns:
    question: int
    answer: int
    category: int | None


def parse_csv(text: str, *, filename: str, mime_type: str = CSV) -> ParsedDocument:
    """Parse decoded CSV ``text``; ``mime_type`` is :data:`CSV` or :data:`TSV`.

    The delimiter of CSV is guessed from the first line (comma, semicolon, tab or pipe).
    """
    delimiter = "\t" if mime_type == TSV else _guess_delimiter(text)
    rows = _read_rows(text, delimiter)
    header = [clean_heading(cell).lower() for cell in rows[0]] if rows else []
    faq = _faq_columns(header)
    if faq is not None:
        sections = _faq_sections(rows[1:], faq)
        layout = "faq"
    else:
        sections = _table_sections(rows)
        layout = "table"
    return ParsedDocument(
        title=title_from_filename(filename),
        sections=sections,
        mime_type=mime_type,
        metadata={"layout": layout},
    )


def _guess_delimiter(text: str) -> str:
    first_line = next((line for line in text.split("\n") if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _read_rows(text: str, delimiter: str) -> list[list[str]]:
    """All rows with at least one non-blank cell, cells stripped."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells):
                rows.append(cells)
    except csv.Error as exc:
        raise IngestionError(f"The CSV file could not be read at line {reader.line_num}: {exc}.") from exc
    return rows


def _faq_columns(header: list[str]) -> _FaqColumns | None:
    def find(names: frozenset[str]) -> int | None:
        return next((index for index, name in enumerate(header) if name in names), None)

    question, answer = find(_QUESTION_NAMES), find(_ANSWER_NAMES)
    if question is None or answer is None:
        return None
    return _FaqColumns(question=question, answer=answer, category=find(_CATEGORY_NAMES))


def _faq_sections(rows: list[list[str]], columns: _FaqColumns) -> list[Section]:
    builder = SectionBuilder()
    for row in rows:
        question = _cell(row, columns.question)
        answer = _cell(row, columns.answer)
        if not question or not answer:
            continue
        category = _cell(row, columns.category) if columns.category is not None else ""
        if category:
            builder.heading(1, category)
            builder.heading(2, question)
        else:
            builder.heading(1, question)
        builder.text(answer)
    return builder.build()


def _table_sections(rows: list[list[str]]) -> list[Section]:
    if not rows:
        return []
    if len(rows) > 1 and _looks_like_header(rows[0]):
        header, body = rows[0], rows[1:]
        lines = [_labelled_row(header, row) for row in body]
    else:
        lines = [" | ".join(cell for cell in row if cell) for row in rows]
    builder = SectionBuilder()
    builder.text("\n".join(line for line in lines if line))
    return builder.build()


def _looks_like_header(row: list[str]) -> bool:
    """A header has a distinct, non-numeric name in every column."""
    names = [cell.lower() for cell in row]
    return all(names) and len(set(names)) == len(names) and not any(map(_is_number, names))


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", "."))
    except ValueError:
        return False
    return True


def _labelled_row(header: list[str], row: list[str]) -> str:
    pairs = []
    for index, value in enumerate(row):
        if not value:
            continue
        name = header[index] if index < len(header) else f"Column {index + 1}"
        pairs.append(f"{name}: {value}")
    return " | ".join(pairs)


def _cell(row: list[str], index: int) -> str:
    return row[index] if index < len(row) else ""
