"""Document tags: short lowercase slugs (``galaxy-s10``, ``tv``) that scope retrieval.

A tag is stored on every chunk's payload (``tags``, a keyword list with a payload index), and a
scoped search is a filter inside the vector store: "any of these tags". Two entry points:

- :func:`validate_tags` for what a person or a client typed (upload form, API, widget): the value
  must already be a tag; a bad one is an error whose message says what a tag looks like.
- :func:`slugify_tag` / :func:`tags_from_metadata` for what comes from free text (a folder name,
  a front-matter ``manual: Samsung Galaxy S10 e-manual``): turned into a tag, never refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MAX_TAG_LENGTH = 64
MAX_TAGS = 20

# Letters and digits of any script, in runs joined by single hyphens: ``galaxy-s10``, ``tv``, ``télé``.
_TAG = re.compile(r"^[^\W_]+(?:-[^\W_]+)*$")
_NOT_TAG_CHARS = re.compile(r"[\W_]+")

# Front-matter keys whose values become tags: lists or comma-separated strings of tags, and the
# name of the product or manual a page belongs to (free text, slugified).
TAG_KEYS = ("tags", "tag")
NAME_KEYS = ("product", "manual")


class TagError(ValueError):
    """A tag (or a list of tags) a person gave is not valid; the message says why, in plain words."""


def slugify_tag(text: str) -> str:
    """``text`` as a tag: lowercased, accents kept, every run of other characters one hyphen,
    cut to :data:`MAX_TAG_LENGTH`. Empty when nothing of ``text`` is a letter or digit."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    slug = _NOT_TAG_CHARS.sub("-", folded).strip("-")
    return slug[:MAX_TAG_LENGTH].rstrip("-")


def validate_tag(tag: str) -> str:
    """The tag ``tag`` (surrounding spaces dropped, lowercased), or :class:`TagError`."""
    value = unicodedata.normalize("NFKC", tag).strip().casefold()
    if not value:
        raise TagError("A tag cannot be empty.")
    if len(value) > MAX_TAG_LENGTH:
        raise TagError(f"The tag {value[:20]!r}… is {len(value)} characters long; tags are at most {MAX_TAG_LENGTH}.")
    if not _TAG.match(value):
        suggestion = slugify_tag(value)
        hint = f" (for example {suggestion!r})" if suggestion else ""
        raise TagError(f"{tag!r} is not a valid tag: use letters, digits and single hyphens, like 'galaxy-s10'{hint}.")
    return value


def validate_tags(tags: object) -> list[str]:
    """A list of tags from a person or a client, checked: sorted, without duplicates.

    Accepts a list of strings or one comma-separated string (what a form field holds); ``None``
    and ``""`` are no tags. Raises :class:`TagError` for a value that is not a tag, a list that is
    not made of strings, or more than :data:`MAX_TAGS` tags."""
    if tags is None:
        return []
    items: list[object]
    if isinstance(tags, str):
        items = [part for part in tags.split(",") if part.strip()]
    elif isinstance(tags, list | tuple):
        items = list(tags)
    else:
        raise TagError("Tags must be a list of strings.")
    found: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise TagError(f"Tags must be strings, not {type(item).__name__} ({item!r}).")
        found.add(validate_tag(item))
    if len(found) > MAX_TAGS:
        raise TagError(f"{len(found)} tags given; at most {MAX_TAGS} are allowed.")
    return sorted(found)


def merge_tags(*groups: Iterable[str]) -> list[str]:
    """The union of several tag lists, sorted, capped at :data:`MAX_TAGS` (first groups first)."""
    merged: list[str] = []
    for group in groups:
        for tag in group:
            if tag not in merged:
                merged.append(tag)
    return sorted(merged[:MAX_TAGS])


def tags_from_metadata(metadata: Mapping[str, Any]) -> list[str]:
    """The tags a document declares in its own front matter (or other metadata).

    ``tags`` / ``tag``: a list, or a comma-separated string; each value is slugified, so
    ``tags: [Galaxy S10]`` gives ``galaxy-s10``. ``product`` / ``manual``: the whole value is one
    name, slugified (``manual: Samsung Galaxy S10 e-manual`` gives ``samsung-galaxy-s10-e-manual``).
    Values that are not text are ignored: a document is never refused for its front matter."""
    found: list[str] = []
    for key in (*TAG_KEYS, *NAME_KEYS):
        value = metadata.get(key)
        values: list[object]
        if isinstance(value, str):
            values = list(value.split(",")) if key in TAG_KEYS else [value]
        elif isinstance(value, list):
            values = list(value)
        else:
            continue
        found.extend(slug for v in values if isinstance(v, str | int) and (slug := slugify_tag(str(v))))
    return merge_tags(found)


def validate_url_rules(rules: object) -> dict[str, list[str]]:
    """A knowledge base's URL tag rules, checked: ``{"/docs/tv/": ["tv"], ...}`` (a tag or a list
    of tags per URL path prefix). Raises :class:`TagError` with what is wrong."""
    if rules is None or rules == "":
        return {}
    if not isinstance(rules, dict):
        raise TagError('URL tag rules must be an object of path prefix to tags, like {"/docs/tv/": ["tv"]}.')
    checked: dict[str, list[str]] = {}
    for prefix, tags in rules.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise TagError(f"A URL rule's prefix must be a path starting with '/', not {prefix!r}.")
        checked[prefix] = validate_tags([tags] if isinstance(tags, str) else tags)
    return checked


def tags_for_url(url: str, rules: Mapping[str, Iterable[str]]) -> list[str]:
    """The tags the URL rules give a page: those of every rule whose path prefix starts the URL's
    path (``{"/docs/tv/": ["tv"]}`` tags ``https://example.com/docs/tv/setup`` with ``tv``)."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path or "/"
    return merge_tags(*(tags for prefix, tags in rules.items() if path.startswith(prefix)))
