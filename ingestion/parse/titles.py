"""Fallback document titles."""

from __future__ import annotations

from pathlib import PurePosixPath


def title_from_filename(filename: str) -> str:
    """Return the file name without folders or extension: ``"docs/Setup Guide.pdf"`` -> ``"Setup Guide"``.

    Windows separators are understood too. Returns ``"Untitled"`` when nothing is left.
    """
    name = PurePosixPath(filename.replace("\\", "/")).name
    stem = PurePosixPath(name).stem if "." in name.lstrip(".") else name
    return stem.strip() or "Untitled"
