"""Bytes to text for every text-based format (plain text, Markdown, HTML, CSV).

Order of attempts, first success wins:

1. a byte-order mark (UTF-8, UTF-16 or UTF-32), which is unambiguous;
2. strict UTF-8, which almost never succeeds by accident on other encodings;
3. the encoding the source declared (HTTP ``charset`` or an HTML ``<meta charset>``);
4. charset-normalizer's detection, preferring Windows-1252 among equally good candidates, since
   short Western European texts fit many single-byte code pages equally well.

The result must then look like text: binary data that happens to decode is refused.
"""

from __future__ import annotations

import codecs
import logging

import charset_normalizer

from ingestion.types import IngestionError

logger = logging.getLogger(__name__)

NOT_TEXT_MESSAGE = (
    "The file is not text: it contains binary data. Check that it was saved as plain text "
    "(for example UTF-8), or upload it in a supported format."
)

# UTF-32 first: its little-endian mark begins with the UTF-16 little-endian one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Among equally likely single-byte encodings, prefer the one most documents really use.
_PREFERRED_LEGACY = ("cp1252", "latin_1", "iso8859_15")

# Labels that mean Windows-1252 in practice (the WHATWG Encoding Standard maps them to it).
_WINDOWS_1252_ALIASES = frozenset({"latin-1", "iso8859-1", "ascii"})

# Control characters that belong in text.
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")

# Above this share of other control characters, the "text" is binary data.
_MAX_CONTROL_RATIO = 0.02

_SCORE_TOLERANCE = 0.01


def decode_text(data: bytes, *, declared_encoding: str | None = None) -> str:
    """Decode ``data`` into text with ``\\n`` line ends, or raise :class:`IngestionError`.

    ``declared_encoding`` is a charset label stated by the source; unknown labels are ignored.
    Raises when the bytes are not text (NUL bytes, many control characters, or no encoding fits).
    """
    text = _decode_with_bom(data)
    if text is None and b"\x00" not in data:
        text = _decode_utf8(data)
        if text is None and declared_encoding:
            text = _decode_declared(data, declared_encoding)
    if text is None:
        text = _decode_detected(data)
    if text is None or not looks_like_text(text):
        raise IngestionError(NOT_TEXT_MESSAGE)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_like_text(text: str) -> bool:
    """Return False when ``text`` holds NUL characters or too many other control characters."""
    if "\x00" in text:
        return False
    if not text:
        return True
    controls = sum(1 for char in text if _is_disallowed_control(char))
    return controls / len(text) <= _MAX_CONTROL_RATIO


def _is_disallowed_control(char: str) -> bool:
    code = ord(char)
    is_control = code < 0x20 or 0x7F <= code < 0xA0
    return is_control and char not in _ALLOWED_CONTROLS


def _decode_with_bom(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue  # e.g. a UTF-16 mark followed by NUL bytes, not really UTF-32
    return None


def _decode_utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decode_declared(data: bytes, label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        logger.info("Ignoring unknown declared encoding %r", label)
        return None
    candidates = ("cp1252", name) if name in _WINDOWS_1252_ALIASES else (name,)
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _decode_detected(data: bytes) -> str | None:
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    if b"\x00" in data and not best.encoding.startswith(("utf_16", "utf_32")):
        return None  # NUL bytes only belong in text encoded as UTF-16 or UTF-32.
    tied: set[str] = set()
    for match in matches:
        same_chaos = abs(match.chaos - best.chaos) <= _SCORE_TOLERANCE
        same_coherence = abs(match.coherence - best.coherence) <= _SCORE_TOLERANCE
        if same_chaos and same_coherence:
            tied.update(match.could_be_from_charset)
    for encoding in _PREFERRED_LEGACY:
        if encoding in tied:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    return str(best)
