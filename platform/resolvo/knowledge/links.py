"""Links to a readable page of a cited section, for documents that have no URL of their own.

An uploaded Markdown or PDF file has no public address, yet a customer who sees "[2]" under an
answer should be able to read what it cites. The link names the organization, the document and
the chunk's position, signed with the project's secret (``django.core.signing``, a salt of its
own): it cannot be forged or walked to other documents, and it needs no request to build, so the
engine, a stored message and an event replay all carry the same link. It grants what a citation
already shows, the cited section, to whoever holds it; it stops working when the document is
deleted. ``PUBLIC_URL`` is where customers reach this server.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "resolvo.knowledge.section"


@dataclass(frozen=True)
class SectionRef:
    organization_id: int
    document_id: int
    position: int


def section_link(ref: SectionRef) -> str:
    token = signing.dumps([ref.organization_id, ref.document_id, ref.position], salt=_SALT)
    return settings.PUBLIC_URL.rstrip("/") + reverse("knowledge-section", args=[token])


def section_from_token(token: str) -> SectionRef | None:
    """The section a token names, or None when it is not one of ours."""
    try:
        org, document, position = signing.loads(token, salt=_SALT)
        return SectionRef(int(org), int(document), int(position))
    except (signing.BadSignature, ValueError, TypeError):
        return None
