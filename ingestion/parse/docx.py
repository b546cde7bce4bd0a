"""Word documents (.docx) with python-docx.

Paragraph styles "Title" and "Heading 1".."Heading 9" (or custom styles based on them) build the
section path, "Title" sitting above "Heading 1". Body paragraphs and tables are read in document
order; list paragraphs get a "- " marker and stay on consecutive lines; a table becomes one line
per row with cells joined by " | ". Headers, footers, comments and text boxes are not read.

A .docx is a zip file, and python-docx unpacks every part into memory and parses its XML with
lxml: 10-20 MB of memory and 0.4-1.5 s per unpacked MB of XML (measured; 494 MB took 4.5 GB and
minutes). So the unpacked size is limited twice before python-docx sees the file: the sizes the
zip declares are checked first (nothing is unpacked for a file that admits to being too big),
then the parts are unpacked in small steps into a stored (uncompressed) copy that python-docx
reads, counting the bytes that really come out, so a zip that understates its sizes cannot make
anything unpack more either.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile

import docx
from docx.document import Document as DocxDocument
from docx.styles.style import ParagraphStyle
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

_MB = 1024 * 1024

# The whole unpacked package, pictures included: python-docx holds every part in memory.
MAX_UNZIPPED_BYTES = 100 * _MB

# Any one part unpacked, word/document.xml above all. Measured on a busy two-core machine: 25 MB
# of ordinary formatted paragraphs (some 9 million characters, thousands of pages) parse in
# 10-16 s at 12 MB of memory per MB; 23 MB of one-letter paragraphs, the worst shape, in 34 s at
# 19 MB per MB (under 0.5 GB). Pictures, the other big parts, hardly compress, so in an upload of
# up to 25 MB they stay under this.
MAX_PART_BYTES = 25 * _MB

# Parts are unpacked this much at a time, which bounds what one read can inflate to.
_UNZIP_CHUNK_BYTES = _MB


def parse_docx(
    data: bytes,
    *,
    filename: str,
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES,
    max_part_bytes: int = MAX_PART_BYTES,
) -> ParsedDocument:
    """Extract the text of the .docx ``data``.

    ``max_unzipped_bytes`` bounds the total unpacked size of the zip container and
    ``max_part_bytes`` the unpacked size of any one part in it; both guard against zip bombs and
    against documents too big to parse in reasonable time and memory (see the module docstring).
    """
    _check_declared_sizes(data, max_unzipped_bytes, max_part_bytes)
    try:
        document = docx.Document(_unpacked_copy(data, max_unzipped_bytes, max_part_bytes))
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


def _check_declared_sizes(data: bytes, max_unzipped_bytes: int, max_part_bytes: int) -> None:
    """Check the unpacked sizes the zip's directory declares, without unpacking anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise IngestionError(
            "The Word document could not be read: it is not a valid .docx (zip) file. The file "
            "may be damaged or incomplete."
        ) from exc
    _check_total(sum(member.file_size for member in members), max_unzipped_bytes)
    for member in members:
        _check_part(member.filename, member.file_size, max_part_bytes)


def _check_total(unzipped: int, limit: int) -> None:
    if unzipped > limit:
        size, limit_text = _sizes(unzipped, limit)
        raise IngestionError(f"The Word document unpacks to {size}, over the {limit_text} office-file limit.")


def _check_part(name: str, unzipped: int, limit: int) -> None:
    if unzipped > limit:
        size, limit_text = _sizes(unzipped, limit)
        raise IngestionError(
            f"The Word document is too large to read: its part {name} unpacks to {size}, over the {limit_text} "
            "limit for one part of an office file. Split the document into smaller files and upload them one by one."
        )


def _sizes(size: int, limit: int) -> tuple[str, str]:
    """``size`` and ``limit`` for a message, in bytes where human units would make them look equal."""
    size_text, limit_text = format_size(size), format_size(limit)
    if size_text == limit_text:
        return f"{size:,} bytes", f"{limit:,}-byte"
    return size_text, limit_text


def _unpacked_copy(data: bytes, max_unzipped_bytes: int, max_part_bytes: int) -> io.BytesIO:
    """The zip ``data`` rewritten with every part stored uncompressed, unpacked a chunk at a time.

    The sizes are counted as the bytes come out, so the limits hold even for a zip whose
    directory lies. (zipfile also stops each part at its declared size, but only after inflating
    a whole read, which for python-docx's ``read()`` is up to 1 GB at once.) Only the methods
    .docx files use (stored, deflate) are accepted: bzip2 and LZMA inflate a read without limit.
    Zip, XML and python-docx errors are left to the caller.
    """
    total = 0
    copy = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(copy, "w", zipfile.ZIP_STORED) as stored:
        for member in archive.infolist():
            if member.is_dir() or archive.getinfo(member.filename) is not member:
                continue  # a folder entry, or a name that appears again later (the last one is read)
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise zipfile.BadZipFile(f"{member.filename} uses a compression method .docx files do not use")
            size = 0
            with archive.open(member) as source, stored.open(member.filename, "w") as target:
                while chunk := source.read(_UNZIP_CHUNK_BYTES):
                    size += len(chunk)
                    total += len(chunk)
                    _check_part(member.filename, size, max_part_bytes)
                    _check_total(total, max_unzipped_bytes)
                    target.write(chunk)
    copy.seek(0)
    return copy


def _read_body(document: DocxDocument) -> tuple[SectionBuilder, str]:
    """Feed the body to a builder; also return the first Title or top heading text."""
    builder = SectionBuilder()
    first_heading = ""
    first_heading_level = 10
    list_lines: list[str] = []
    styles: dict[str | None, tuple[int | None, bool]] = {}
    for block in document.iter_inner_content():
        level, list_style = _style_kind(block, styles) if isinstance(block, Paragraph) else (None, False)
        if isinstance(block, Paragraph) and level is None and _is_list_item(block, list_style):
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


def _style_kind(paragraph: Paragraph, known: dict[str | None, tuple[int | None, bool]]) -> tuple[int | None, bool]:
    """The heading level of the paragraph's style and whether it is a list style.

    Looked up once per style id in ``known``: python-docx searches the styles part with XPath on
    every ``paragraph.style``, which was most of the time spent on long documents.
    """
    style_id = paragraph._p.style
    if style_id not in known:
        style = paragraph.style
        list_style = style is not None and (style.name or "").startswith("List")
        known[style_id] = (_heading_level(style), list_style)
    return known[style_id]


def _heading_level(style: ParagraphStyle | None) -> int | None:
    """0 for "Title", N for "Heading N", following base styles; None for body text."""
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


def _is_list_item(paragraph: Paragraph, list_style: bool) -> bool:
    properties = paragraph._p.pPr
    if properties is not None and properties.numPr is not None:
        return True
    return list_style


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
