"""Word documents (.docx) with python-docx.

Paragraph styles "Title" and "Heading 1".."Heading 9" (or custom styles based on them) build the
section path, "Title" sitting above "Heading 1". Body paragraphs and tables are read in document
order; list paragraphs get a "- " marker and stay on consecutive lines; a table becomes one line
per row with cells joined by " | ". Headers, footers, comments and text boxes are not read.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile

import docx
from docx.document import Document as DocxDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingestion.parse.detect import DOCX
from ingestion.parse.sections import SectionBuilder, clean_heading
from ingestion.parse.titles import title_from_filename
from ingestion.sizes import format_size
from ingestion.types import IngestionError, ParsedDocument

logger = logging.getLogger(__name__)

_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.I)

# Custom styles usually derive from a built-in heading within a few steps.
_MAX_STYLE_DEPTH = 5


def parse_docx(data: bytes, *, filename: str, max_unzipped_bytes: int) -> ParsedDocument:
    """Extract the text of the .docx ``data``.

    ``max_unzipped_bytes`` bounds the total unpacked size of the zip container, which guards
    against zip bombs: python-docx reads every part into memory.
    """
    _check_unzipped_size(data, max_unzipped_bytes)
    try:
        document = docx.Document(io.BytesIO(data))
        builder, first_heading = _read_body(document)
        core_title = document.core_properties.title
    except IngestionError:
        raise
    except Exception as exc:  # zip, XML and python-docx errors alike
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise IngestionError(
            f"The Word document could not be read: {reason}. The file may be damaged or not a real .docx file."
        ) from exc
    title = clean_heading(core_title or "") or first_heading or title_from_filename(filename)
    return ParsedDocument(title=title, sections=builder.build(), mime_type=DOCX)


def _check_unzipped_size(data: bytes, limit: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise IngestionError(
            "The Word document could not be read: it is not a valid .docx (zip) file. The file "
            "may be damaged or incomplete."
        ) from exc
    if unzipped > limit:
        raise IngestionError(
            f"The Word document unpacks to {format_size(unzipped)}, more than the {format_size(limit)} limit."
        )


def _read_body(document: DocxDocument) -> tuple[SectionBuilder, str]:
    """Feed the body to a builder; also return the first Title or top heading text."""
    builder = SectionBuilder()
    first_heading = ""
    first_heading_level = 10
    list_lines: list[str] = []
    for block in document.iter_inner_content():
        level = _heading_level(block) if isinstance(block, Paragraph) else None
        if isinstance(block, Paragraph) and level is None and _is_list_item(block):
            text = clean_heading(block.text)
            if text:
                list_lines.append(f"- {text}")
            continue
        builder.text("\n".join(list_lines))
        list_lines = []
        if isinstance(block, Table):
            builder.text(_table_text(block))
            continue
        if level is None:
            builder.text(block.text)
            continue
        heading = clean_heading(block.text)
        builder.heading(level, heading)
        if heading and level < first_heading_level:
            first_heading, first_heading_level = heading, level
    builder.text("\n".join(list_lines))
    return builder, first_heading


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for "Title", N for "Heading N", following base styles; None for body text."""
    style = paragraph.style
    for _ in range(_MAX_STYLE_DEPTH):
        if style is None:
            return None
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.fullmatch(name)
        if match is not None:
            return int(match.group(1))
        style = style.base_style
    return None


def _is_list_item(paragraph: Paragraph) -> bool:
    properties = paragraph._p.pPr
    if properties is not None and properties.numPr is not None:
        return True
    style_name = paragraph.style.name if paragraph.style is not None else ""
    return (style_name or "").startswith("List")


def _table_text(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue  # a merged cell is returned once per grid column it spans
            previous = cell._tc
            cells.append(clean_heading(cell.text))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)
