"""Hostile inputs for the ingestion pipeline, built at test time (small in the repository, big in memory).

Each generator returns the bytes of one upload and says in its docstring what it attacks. Sizes are
arguments so a test can pick "big enough to hurt" for the machine it runs on. No Django here:
job-level tests and the parse tests alike can import these.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
import zlib

_MB = 1024 * 1024


def nested_divs_html(n: int) -> bytes:
    """HTML with ``n`` nested <div> elements: recursive tree walks and quadratic clean-up passes."""
    return b"<!doctype html><html><head><title>Nested</title></head><body>" + (
        b"<div>" * n + b"<p>Deep inside.</p>" + b"</div>" * n + b"</body></html>"
    )


def docx_bomb(unpacked_mb: int, *, letters_per_paragraph: int = 262_144) -> bytes:
    """A valid .docx whose document.xml is ``unpacked_mb`` MB of long one-letter paragraphs compressing ~950:1 (few letters each: millions of tiny paragraphs, ~340:1): unpacked-size limits, XML tree memory and text volume."""
    parts = _docx_parts()
    head, tail = _split_body(parts.pop("word/document.xml").decode())
    paragraph = b"<w:p><w:r><w:t>" + b"a" * letters_per_paragraph + b"</w:t></w:r></w:p>"
    chunk = paragraph * max(1, _MB // len(paragraph))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
        with archive.open("word/document.xml", "w", force_zip64=unpacked_mb >= 2000) as part:
            part.write(head.encode())
            written = 0
            while written < unpacked_mb * _MB:
                part.write(chunk)
                written += len(chunk)
            part.write(tail.encode())
    return out.getvalue()


def zip_bomb_docx(unpacked_mb: int = 256, *, understate: bool = True) -> bytes:
    """A .docx whose document refers to an image part of ``unpacked_mb`` MB of zeros (~1000:1), its zip headers claiming 1 KB when ``understate``: unzip-size checks that trust the directory."""
    parts = _docx_parts()
    name = "word/media/image1.png"
    relationship = (
        '<Relationship Id="rIdBomb" Target="media/image1.png" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"/>'
    )
    rels = parts["word/_rels/document.xml.rels"].decode()
    parts["word/_rels/document.xml.rels"] = rels.replace("</Relationships>", relationship + "</Relationships>").encode()
    types = parts["[Content_Types].xml"].decode()
    if 'Extension="png"' not in types:
        types = types.replace("<Default ", '<Default Extension="png" ContentType="image/png"/><Default ', 1)
    parts["[Content_Types].xml"] = types.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for part_name, body in parts.items():
            archive.writestr(part_name, body)
        with archive.open(name, "w", force_zip64=unpacked_mb >= 2000) as part:
            zeros = bytes(_MB)
            for _ in range(unpacked_mb):
                part.write(zeros)
    data = bytearray(out.getvalue())
    if understate:
        _understate_size(data, name.encode(), 1024)
    return bytes(data)


def big_csv(rows: int) -> bytes:
    """A CSV with ``rows`` rows of eight columns: per-row and per-section costs in the table reader and splitter."""
    lines = ["id,name,email,plan,country,created,status,notes"]
    lines.extend(
        f"{i},Customer {i},customer{i}@example.com,pro,NZ,2024-01-{i % 28 + 1:02d},active,Renewed on time"
        for i in range(rows)
    )
    return ("\n".join(lines) + "\n").encode()


def long_word_text(n_chars: int) -> bytes:
    """Plain text that is one unbroken ``n_chars``-letter word: splitters and tokenizers that are quadratic without spaces."""
    return b"Intro line.\n\n" + b"a" * n_chars + b"\n"


def long_heading_markdown(words: int) -> bytes:
    """Markdown whose heading is ``words`` words long: breadcrumbs copied into every chunk's embedding text."""
    heading = " ".join(f"word{i}" for i in range(words))
    body = "\n\n".join(f"Paragraph {i} under the long heading." for i in range(50))
    return f"# {heading}\n\n{body}\n".encode()


def billion_laughs_xml() -> bytes:
    """An XHTML page built on the classic nested entities (~3 GB expanded, under 1 KB here): XML and HTML parsers that expand entities."""
    return (
        _laughs_doctype("html") + '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol9;</p></body></html>\n'
    ).encode()


def billion_laughs_docx() -> bytes:
    """A .docx whose document.xml declares the nested "billion laughs" entities: python-docx's XML parser."""
    parts = _docx_parts()
    head, tail = _split_body(parts["word/document.xml"].decode())
    declaration, _, root = head.partition("?>")
    paragraph = "<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>"
    parts["word/document.xml"] = (
        declaration + "?>\n" + _laughs_doctype("w:document") + root.lstrip() + paragraph + tail
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
    return out.getvalue()


def pdf_bomb(unpacked_mb: int = 60, *, pages: int = 1) -> bytes:
    """A PDF whose page content streams each inflate ~400:1 to ``unpacked_mb`` MB of text operators: decompression memory and content-stream parsing time."""
    operators = b"BT /F1 1 Tf 0 0 Td (bomb) Tj ET\n"
    compressor = zlib.compressobj(9)
    block = operators * (_MB // len(operators))
    stream = b"".join(compressor.compress(block) for _ in range(unpacked_mb)) + compressor.flush()
    return _pdf([stream] * pages)


def utf16_text() -> bytes:
    """UTF-16 text with a BOM (NUL byte in every other position): binary sniffing and encoding detection."""
    text = "Café opening hours\n\nWe open at 9:00 on weekdays. Größe, naïve, 東京, emoji 🙂.\n" * 20
    return text.encode("utf-16")


def binary_junk(n_bytes: int = _MB, *, seed: int = 0) -> bytes:
    """``n_bytes`` of reproducible random bytes: format detection, charset guessing and "no text" handling."""
    return random.Random(seed).randbytes(n_bytes)


# --- Helpers ------------------------------------------------------------------------------------


def _docx_parts() -> dict[str, bytes]:
    """The parts of a small valid .docx written by python-docx, by name, in archive order."""
    import docx

    document = docx.Document()
    document.add_heading("Hostile document", level=1)
    document.add_paragraph("Seemingly harmless.")
    buffer = io.BytesIO()
    document.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def _laughs_doctype(root: str) -> str:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE {root} [\n  " + "\n  ".join(entities) + "\n]>\n"


def _split_body(document_xml: str) -> tuple[str, str]:
    """Split document.xml just inside <w:body> and just before <w:sectPr>, dropping the old paragraphs."""
    body = re.search(r"<w:body>", document_xml)
    section = re.search(r"<w:sectPr[ >]", document_xml)
    assert body is not None and section is not None, "python-docx's template changed"
    return document_xml[: body.end()], document_xml[section.start() :]


def _understate_size(data: bytearray, name: bytes, size: int) -> None:
    """Rewrite the uncompressed size of member ``name`` in its local header and central directory entry."""
    local = _find_header(data, b"PK\x03\x04", name, name_offset=30, name_length_offset=26)
    central = _find_header(data, b"PK\x01\x02", name, name_offset=46, name_length_offset=28)
    data[local + 22 : local + 26] = size.to_bytes(4, "little")
    data[central + 24 : central + 28] = size.to_bytes(4, "little")


def _find_header(data: bytearray, signature: bytes, name: bytes, *, name_offset: int, name_length_offset: int) -> int:
    start = 0
    while (position := data.find(signature, start)) != -1:
        length = int.from_bytes(data[position + name_length_offset : position + name_length_offset + 2], "little")
        if data[position + name_offset : position + name_offset + length] == name:
            return position
        start = position + 4
    raise AssertionError(f"no {signature!r} header for {name!r}")


def _pdf(streams: list[bytes]) -> bytes:
    """A minimal PDF with one page per (already Flate-compressed) content stream."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for stream in streams:
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (len(objects))
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
