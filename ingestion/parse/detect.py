"""Decide which parser a file needs, from its first bytes, its name and any declared type.

Content wins over names: a PDF renamed ``notes.txt`` is still a PDF, and a PNG renamed
``notes.txt`` is still an image. A known extension wins over a declared type, because web servers
often label Markdown or CSV as ``text/plain`` or ``application/octet-stream``.
"""

from __future__ import annotations

import io
import mimetypes
import zipfile
from pathlib import PurePosixPath

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
CSV = "text/csv"
TSV = "text/tab-separated-values"
TEXT = "text/plain"
OCTET_STREAM = "application/octet-stream"

SUPPORTED_MIME_TYPES = frozenset({PDF, DOCX, HTML, MARKDOWN, CSV, TSV, TEXT})

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_ZIP = "application/zip"

_EXTENSIONS = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".tsv": TSV,
    ".txt": TEXT,
    ".text": TEXT,
}

# Declared types that say nothing about the content; the file name or the bytes decide instead.
_VAGUE_DECLARED = frozenset({"", OCTET_STREAM, "binary/octet-stream", "application/unknown"})

# Formats recognised by their first bytes. Only PDF is supported; the rest are named so that the
# error message can say what the file really is.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%!PS", "application/postscript"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/msword"),  # Office 97-2003 (OLE2)
    (b"{\\rtf", "application/rtf"),
    (b"\x7fELF", "application/x-executable"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"BZh9", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"OggS", "audio/ogg"),
    (b"ID3\x03", "audio/mpeg"),
    (b"ID3\x04", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
)

# Types outside text/* that are still text to read as plain text.
_TEXTUAL_APPLICATION_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-sh",
        "application/sql",
    }
)

_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


def detect_mime_type(data: bytes, filename: str, *, declared_type: str | None = None) -> str:
    """Return the MIME type that decides how ``data`` is parsed.

    ``declared_type`` is a type stated by the source (an HTTP ``Content-Type`` or an upload form),
    without parameters. The result is one of :data:`SUPPORTED_MIME_TYPES` when the file can be
    parsed; any other value names an unsupported type for the error message.
    """
    sniffed = _sniff_magic(data)
    if sniffed is not None:
        return sniffed
    extension = file_extension(filename)
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    declared = (declared_type or "").strip().lower()
    if declared in SUPPORTED_MIME_TYPES:
        return declared
    guessed = _type_from_extension(extension) if extension else None
    if guessed is not None and not _is_textual(guessed):
        return guessed
    if declared not in _VAGUE_DECLARED and not _is_textual(declared):
        return declared
    return _sniff_text(data)


def file_extension(filename: str) -> str:
    """Return the lower-case extension of ``filename`` with its dot (``".pdf"``), or ``""``."""
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def _sniff_magic(data: bytes) -> str | None:
    # The PDF specification lets readers accept a header within the first kilobyte.
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    for signature, mime_type in _MAGIC:
        if data.startswith(signature):
            return mime_type
    if _is_windows_executable(data):
        return "application/vnd.microsoft.portable-executable"
    if data[8:12] in (b"WEBP", b"AVI ", b"WAVE") and data.startswith(b"RIFF"):
        return {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}[data[8:12]]
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def _is_windows_executable(data: bytes) -> bool:
    """``MZ`` alone is too weak (a text file may start with it); check the PE header it points to."""
    if not data.startswith(b"MZ") or len(data) < 64:
        return False
    offset = int.from_bytes(data[60:64], "little")
    return data[offset : offset + 4] == b"PE\x00\x00"


def _sniff_zip(data: bytes) -> str | None:
    """Tell a Word document from other zip-based files by the parts it contains.

    A damaged zip says nothing about what it was meant to be; the file name decides.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        return None
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return _XLSX
    if "ppt/presentation.xml" in names:
        return _PPTX
    return _ZIP


def _type_from_extension(extension: str) -> str | None:
    guessed, _ = mimetypes.guess_type("file" + extension, strict=False)
    return guessed


def _is_textual(mime_type: str) -> bool:
    return (
        mime_type.startswith("text/")
        or mime_type in _TEXTUAL_APPLICATION_TYPES
        or mime_type.endswith(("+xml", "+json"))
    )


def _sniff_text(data: bytes) -> str:
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return TEXT  # UTF-16 or UTF-32 with a byte-order mark; decoding checks the rest.
    if b"\x00" in head:
        return OCTET_STREAM
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(_HTML_MARKERS) or any(marker in lowered for marker in _HTML_MARKERS[1:]):
        return HTML
    return TEXT
