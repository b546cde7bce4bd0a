"""The door of the REST API: who is calling (a personal API token), how often (a rate limit per
member), how much they send (body size) and what their role lets them do.

A token acts as its member: the member's organization is the only one any endpoint reads or
writes, and the member's role decides the rest (agents work tickets and read everything;
knowledge bases and documents are changed by owners and admins only).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from ingestion.sizes import format_size
from resolvo.api import ratelimit
from resolvo.api.v1.errors import ApiError
from resolvo.organizations.models import Membership, Organization
from resolvo.organizations.selectors import membership_for_api_token

JSON_MAX_BYTES = 256 * 1024
"""The largest JSON body an endpoint takes (the longest note or reply is 10,000 characters)."""
MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""What a multipart upload may carry beside the file itself (boundaries, headers, form fields)."""


class TokenAuth(HttpBearer):
    """``Authorization: Bearer rsv_...``: the token's membership, or 401."""

    def authenticate(self, request: HttpRequest, token: str) -> Membership | None:
        membership = membership_for_api_token(raw=token)
        if membership is None:
            return None
        try:
            ratelimit.check(token=str(membership.pk))
        except ratelimit.RateLimited as exc:
            raise ApiError(
                429,
                f"Too many requests for this member's API tokens; try again in {exc.retry_after} s.",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        body_size_check(request)
        return membership


def body_size_check(request: HttpRequest) -> None:
    """413 before the body is read: JSON up to :data:`JSON_MAX_BYTES`, uploads up to the ingestion
    limit (``INGEST_MAX_BYTES``) plus the multipart envelope."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "The Content-Length header is not a number.") from None
    if (request.content_type or "").startswith("multipart/"):
        limit = settings.INGEST_MAX_BYTES + MULTIPART_OVERHEAD_BYTES
        if length > limit:
            raise ApiError(
                413,
                f"The upload is {format_size(length)}, over the upload limit of "
                f"{format_size(settings.INGEST_MAX_BYTES)}.",
            )
    elif length > JSON_MAX_BYTES:
        raise ApiError(
            413, f"The request body is {format_size(length)}; the API takes bodies up to {format_size(JSON_MAX_BYTES)}."
        )


def member(request: HttpRequest) -> Membership:
    """The calling member (``request.auth`` after :class:`TokenAuth`)."""
    found = getattr(request, "auth", None)
    assert isinstance(found, Membership), "endpoint without TokenAuth"
    return found


def organization(request: HttpRequest) -> Organization:
    """The caller's organization: the only one the API reads or writes for this request."""
    return member(request).organization


def require_knowledge_manager(request: HttpRequest) -> Membership:
    """The caller, if their role may change knowledge bases and documents (owner, admin); 403."""
    found = member(request)
    if not found.can_manage_knowledge:
        raise ApiError(403, "Changing knowledge bases and documents takes an owner's or admin's token.")
    return found
