"""Cursor pagination for every list: ``?limit=`` (1-100, default 25) and ``?cursor=`` (the
previous page's ``next_cursor``); the answer is ``{"items": [...], "next_cursor": "..." | null}``.

Keyset, not offsets: the cursor holds the last item's sort key and id (signed, so it is opaque
and cannot be forged into another listing), and the next page is "everything after that", which
stays fast on a big table and never repeats or skips an item when rows are added meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet
from ninja import Schema
from pydantic import Field

from resolvo.api.v1.errors import ApiError

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_SALT = "resolvo.api.v1.cursor"

T = TypeVar("T")
M = TypeVar("M", bound=Model)


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class PageParams(Schema):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
    cursor: str | None = Field(None, max_length=2000, description="The previous page's next_cursor.")


def _after(order: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in ``order`` (each field ascending, or descending with '-')."""
    after = Q(pk__in=[])
    for i, field in enumerate(order):
        name = field.lstrip("-")
        step = Q(**{f"{name}__lt" if field.startswith("-") else f"{name}__gt": values[i]})
        for earlier, value in zip(order[:i], values[:i], strict=True):
            step &= Q(**{earlier.lstrip("-"): value})
        after |= step
    return after


def _key(row: Model, order: Sequence[str]) -> list[Any]:
    values = []
    for field in order:
        value = getattr(row, field.lstrip("-"))
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return values


def paginate(
    queryset: QuerySet[M],
    *,
    listing: str,
    order: Sequence[str],
    params: PageParams,
    serialize: Callable[[M], Any],
) -> dict[str, Any]:
    """One page of ``queryset`` sorted by ``order`` (non-null fields, ending with ``"id"`` or
    ``"-id"`` so the key is unique). ``listing`` names the list; a cursor works for its own only."""
    order = tuple(order)
    assert order and order[-1].lstrip("-") == "id", "the sort key must end with the id"
    queryset = queryset.order_by(*order)
    if params.cursor:
        try:
            state = signing.loads(params.cursor, salt=_SALT)
            valid = state.get("l") == listing and state.get("o") == list(order) and len(state.get("v")) == len(order)
        except (signing.BadSignature, AttributeError, TypeError, ValueError):
            valid = False
        if not valid:
            raise ApiError(400, "The cursor is not valid here: pass the next_cursor of the previous page of this list.")
        queryset = queryset.filter(_after(order, state["v"]))
    rows = list(queryset[: params.limit + 1])
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    cursor = None
    if more and rows:
        cursor = signing.dumps({"l": listing, "o": list(order), "v": _key(rows[-1], order)}, salt=_SALT, compress=True)
    return {"items": [serialize(row) for row in rows], "next_cursor": cursor}
