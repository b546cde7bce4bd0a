"""Contacts: who asked (read-only; contacts are made by handoffs)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from resolvo.api.v1.auth import organization
from resolvo.api.v1.pagination import Page, PageParams, paginate
from resolvo.api.v1.params import Id
from resolvo.api.v1.schemas import ERRORS, ContactFilters, ContactOut, contact_out
from resolvo.tickets.selectors import contact_in_organization, contacts_in_organization

router = Router(tags=["contacts"])


@router.get("/contacts", response={200: Page[ContactOut], **ERRORS}, summary="List contacts, newest first")
def contact_list(request: HttpRequest, filters: Query[ContactFilters], page: Query[PageParams]) -> dict[str, Any]:
    contacts = contacts_in_organization(organization=organization(request), q=filters.q.strip())
    return paginate(contacts, listing="contacts", order=("-created_at", "-id"), params=page, serialize=contact_out)


@router.get("/contacts/{contact_id}", response={200: ContactOut, **ERRORS}, summary="Get a contact")
def contact_get(request: HttpRequest, contact_id: Id) -> dict[str, Any]:
    return contact_out(contact_in_organization(organization=organization(request), contact_id=contact_id))
