"""Parse stage: bytes of one source in, a :class:`ParsedDocument` out.

:func:`parse_bytes` is the entry point. It checks the size, detects the format
(:func:`detect_mime_type`), decodes text formats once (:mod:`.encoding`) and hands over to one
module per format. Every problem with the input comes out as an :class:`IngestionError` whose
message can be shown to the person who uploaded the file.
"""

from __future__ import annotations

from email.message import Message

from ingestion.parse.detect import (
    CSV,
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    SUPPORTED_MIME_TYPES,
    TEXT,
    TSV,
    detect_mime_type,
    file_extension,
)
from ingestion.parse.docx import MAX_UNZIPPED_BYTES, parse_docx
from ingestion.parse.encoding import decode_text
from ingestion.parse.html import parse_html, sniff_meta_charset
from ingestion.parse.markdown import parse_markdown
from ingestion.parse.pdf import parse_pdf
from ingestion.parse.plaintext import parse_text
from ingestion.parse.tabular import parse_csv
from ingestion.sizes import format_size
from ingestion.types import IngestionError, ParsedDocument

__all__ = [
    "SUPPORTED_MIME_TYPES",
    "check_size",
    "detect_mime_type",
    "parse_bytes",
]

SUPPORTED_DESCRIPTION = "PDF, Word (.docx), HTML, Markdown, plain text and CSV"

# A .docx may unpack to this many times the upload limit (text compresses about 10:1), and never
# to more than ``max_unzipped_bytes``: the factor only binds when the upload limit is small.
DOCX_UNZIP_FACTOR = 20

_NO_TEXT_MESSAGES = {
    PDF: (
        "No text could be extracted from the PDF. It may be a scanned image without a text "
        "layer; run it through OCR and upload the result."
    ),
    HTML: "No text could be extracted from the page: it has no main content outside menus.",
}
_NO_TEXT_DEFAULT = "No text could be extracted from the file."

_UNSUPPORTED_HINTS = {
    "application/msword": " Save it as a Word document (.docx) and upload it again.",
}


def parse_bytes(
    data: bytes,
    *,
    filename: str,
    mime_type: str | None = None,
    max_bytes: int,
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES,
) -> ParsedDocument:
    """Parse one file or downloaded page.

    ``filename`` is the name the source gave (an upload's name, or the last part of a URL); it
    helps detection and is the fallback title. ``mime_type`` is the type the source declared, if
    any, possibly with a charset (``"text/html; charset=iso-8859-1"``). ``max_bytes`` (> 0) is
    the size limit. ``max_unzipped_bytes`` (> 0) limits what an office file (.docx) may unpack
    to; it is lowered to ``DOCX_UNZIP_FACTOR`` times ``max_bytes`` when that is less. Raises
    :class:`IngestionError` for files that are too big, empty, of an unsupported type,
    unreadable, or without text.
    """
    check_size(len(data), max_bytes)
    if not data.strip():
        raise IngestionError("The file is empty.")
    declared_type, charset = _split_content_type(mime_type)
    detected = detect_mime_type(data, filename, declared_type=declared_type)
    if detected not in SUPPORTED_MIME_TYPES:
        raise IngestionError(_unsupported_message(detected, filename))
    document = _parse_as(
        detected,
        data,
        filename=filename,
        charset=charset,
        max_unzipped_bytes=min(max_unzipped_bytes, max_bytes * DOCX_UNZIP_FACTOR),
    )
    if not any(section.text.strip() for section in document.sections):
        raise IngestionError(_NO_TEXT_MESSAGES.get(detected, _NO_TEXT_DEFAULT))
    return document


def check_size(num_bytes: int, max_bytes: int) -> None:
    """Raise :class:`IngestionError` when ``num_bytes`` is over ``max_bytes``, in human units."""
    if num_bytes <= max_bytes:
        return
    size, limit = format_size(num_bytes), format_size(max_bytes)
    if size == limit:
        size, limit = f"{num_bytes:,} bytes", f"{max_bytes:,}-byte"
    raise IngestionError(f"The file is {size}, larger than the {limit} limit.")


def _parse_as(
    mime_type: str, data: bytes, *, filename: str, charset: str | None, max_unzipped_bytes: int
) -> ParsedDocument:
    if mime_type == PDF:
        return parse_pdf(data, filename=filename)
    if mime_type == DOCX:
        return parse_docx(data, filename=filename, max_unzipped_bytes=max_unzipped_bytes)
    if mime_type == HTML:
        text = decode_text(data, declared_encoding=charset or sniff_meta_charset(data))
        return parse_html(text, filename=filename)
    text = decode_text(data, declared_encoding=charset)
    if mime_type == MARKDOWN:
        return parse_markdown(text, filename=filename)
    if mime_type in (CSV, TSV):
        return parse_csv(text, filename=filename, mime_type=mime_type)
    if mime_type == TEXT:
        return parse_text(text, filename=filename)
    raise AssertionError(f"no parser for supported type {mime_type}")


def _split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """``"text/html; charset=UTF-8"`` -> ``("text/html", "UTF-8")``."""
    if not content_type:
        return None, None
    declared_type = content_type.split(";", 1)[0].strip().lower()
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return (
        declared_type if "/" in declared_type else None,
        charset if isinstance(charset, str) else None,
    )


def _unsupported_message(mime_type: str, filename: str) -> str:
    extension = file_extension(filename)
    described = f"{extension} ({mime_type})" if extension else mime_type
    hint = _UNSUPPORTED_HINTS.get(mime_type, "")
    return f"Unsupported file type: {described}. Supported types: {SUPPORTED_DESCRIPTION}.{hint}"
