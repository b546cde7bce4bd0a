"""Who the token acts as, and the member's own API tokens (list, revoke). Tokens are created in
the dashboard or with ``manage.py api_token``: a token never makes another token."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from resolvo.api.v1.auth import member
from resolvo.api.v1.errors import ApiError
from resolvo.api.v1.pagination import Page, PageParams, paginate
from resolvo.api.v1.params import Id
from resolvo.api.v1.schemas import ERRORS, MeOut, TokenOut, me_out, token_out
from resolvo.organizations.selectors import api_token_in_organization, api_tokens_of
from resolvo.organizations.services import api_token_revoke

router = Router(tags=["account"])


@router.get("/me", response={200: MeOut, **ERRORS}, summary="Who this token acts as")
def me(request: HttpRequest) -> dict[str, Any]:
    return me_out(member(request))


@router.get("/tokens", response={200: Page[TokenOut], **ERRORS}, summary="List your API tokens")
def token_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    tokens = api_tokens_of(membership=member(request))
    return paginate(tokens, listing="tokens", order=("-created_at", "-id"), params=page, serialize=token_out)


@router.delete(
    "/tokens/{token_id}",
    response={200: TokenOut, **ERRORS},
    summary="Revoke an API token (your own; owners and admins: any of the organization's)",
)
def token_revoke(request: HttpRequest, token_id: Id) -> dict[str, Any]:
    caller = member(request)
    token = api_token_in_organization(organization=caller.organization, token_id=token_id)
    if token is None:
        raise ApiError(404, f"No API token {token_id}.")
    return token_out(api_token_revoke(token=token, by=caller.user))
