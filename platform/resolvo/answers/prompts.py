"""Prompt templates live in ``prompts/*.txt``; this module loads and fills them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@cache
def template(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8").strip()


def render(name: str, **values: object) -> str:
    return template(name).format(**values)


def quote_attribute(value: str) -> str:
    """Passage attributes are delimited data: keep quotes and angle brackets out of them."""
    return value.replace('"', "'").replace("<", "(").replace(">", ")").replace("\n", " ")[:200]


def quote_text(value: str) -> str:
    """Passage bodies must not be able to close their own delimiter."""
    return value.replace("</passage", "</ passage").replace("<passage", "< passage")
