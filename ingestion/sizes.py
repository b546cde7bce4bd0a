"""Byte sizes written for people, for error messages such as "The file is 12.5 MB"."""

from __future__ import annotations

_UNITS = ("KB", "MB", "GB", "TB")


def format_size(num_bytes: int) -> str:
    """Return ``num_bytes`` in the largest unit that keeps the number at or above 1.

    Units are powers of 1024 with the everyday names (KB, MB, GB). Whole numbers lose their
    decimal: ``format_size(10 * 1024 * 1024) == "10 MB"``, ``format_size(1536) == "1.5 KB"``.
    """
    if num_bytes < 1024:
        return "1 byte" if num_bytes == 1 else f"{num_bytes} bytes"
    value = num_bytes / 1024
    unit_index = 0
    while value >= 1024 and unit_index < len(_UNITS) - 1:
        value /= 1024
        unit_index += 1
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {_UNITS[unit_index]}"
