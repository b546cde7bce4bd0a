"""Path parameters shared by the endpoints."""

from __future__ import annotations

from typing import Annotated

from ninja.params import functions

from resolvo.api.v1.schemas import ID_MAX

Id = Annotated[int, functions.Path(ge=1, le=ID_MAX)]
"""An object's id in the path: a positive 64-bit integer (anything else answers 422)."""
