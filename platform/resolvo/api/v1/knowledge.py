"""Knowledge bases and their documents: every member reads them; owners and admins upload,
delete, retry and re-index (through :mod:`resolvo.knowledge.services`, which queue the work)."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import File, Form, Query, Router, UploadedFile

from ingestion.sizes import format_size
from ingestion.tags import TagError, validate_tags
from resolvo.api.v1.auth import organization, require_knowledge_manager
from resolvo.api.v1.errors import ApiError
from resolvo.api.v1.pagination import Page, PageParams, paginate
from resolvo.api.v1.params import Id
from resolvo.api.v1.schemas import (
    ERRORS,
    DocumentFilters,
    DocumentOut,
    DocumentPatch,
    KnowledgeBaseOut,
    ReindexOut,
    SearchIn,
    SearchOut,
    document_out,
    knowledge_base_out,
)
from resolvo.knowledge import services
from resolvo.knowledge.models import Document
from resolvo.knowledge.selectors import (
    chunks_search,
    document_in_organization,
    documents_for_kb,
    knowledge_base_in_organization,
    knowledge_bases_in_organization,
)

router = Router(tags=["knowledge"])


@router.get("/knowledge-bases", response={200: Page[KnowledgeBaseOut], **ERRORS}, summary="List knowledge bases")
def knowledge_base_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    kbs = knowledge_bases_in_organization(organization=organization(request))
    return paginate(kbs, listing="knowledge-bases", order=("name", "id"), params=page, serialize=knowledge_base_out)


@router.get(
    "/knowledge-bases/{knowledge_base_id}", response={200: KnowledgeBaseOut, **ERRORS}, summary="Get a knowledge base"
)
def knowledge_base_get(request: HttpRequest, knowledge_base_id: Id) -> dict[str, Any]:
    kb = knowledge_base_in_organization(organization=organization(request), knowledge_base_id=knowledge_base_id)
    return knowledge_base_out(kb)


@router.post(
    "/knowledge-bases/{knowledge_base_id}/reindex",
    response={202: ReindexOut, **ERRORS},
    summary="Re-index every document (owner, admin)",
)
def knowledge_base_reindex(request: HttpRequest, knowledge_base_id: Id) -> tuple[int, dict[str, Any]]:
    require_knowledge_manager(request)
    kb = knowledge_base_in_organization(organization=organization(request), knowledge_base_id=knowledge_base_id)
    return 202, {"queued": services.knowledge_base_reindex(knowledge_base=kb)}


@router.get(
    "/knowledge-bases/{knowledge_base_id}/documents",
    response={200: Page[DocumentOut], **ERRORS},
    summary="List a knowledge base's documents, by source",
)
def document_list(
    request: HttpRequest, knowledge_base_id: Id, filters: Query[DocumentFilters], page: Query[PageParams]
) -> dict[str, Any]:
    kb = knowledge_base_in_organization(organization=organization(request), knowledge_base_id=knowledge_base_id)
    documents = documents_for_kb(knowledge_base=kb)
    if filters.status:
        documents = documents.filter(status=filters.status)
    return paginate(
        documents, listing=f"documents:{kb.pk}", order=("source", "id"), params=page, serialize=document_out
    )


@router.post(
    "/knowledge-bases/{knowledge_base_id}/documents",
    response={202: DocumentOut, **ERRORS},
    summary="Upload a document (owner, admin); it is queued for ingestion",
    description=(
        "`multipart/form-data` with the file as `file` and, optionally, `url`: where customers can "
        "read the original (cited answers link there), and `tags`: comma-separated tags like "
        "`tv,galaxy-s10` (answers can be scoped to them; a replaced document keeps its tags when "
        "none are sent). A file of the same name replaces the document (the same bytes again change "
        "nothing but the tags). Files over the upload limit answer 413; malformed tags 422."
    ),
)
def document_upload(
    request: HttpRequest, knowledge_base_id: Id, file: File[UploadedFile], url: Form[str] = "", tags: Form[str] = ""
) -> tuple[int, dict[str, Any]]:
    require_knowledge_manager(request)
    kb = knowledge_base_in_organization(organization=organization(request), knowledge_base_id=knowledge_base_id)
    limit = settings.INGEST_MAX_BYTES
    size = file.size or 0
    if size > limit:
        raise ApiError(413, f"The file is {format_size(size)}, over the upload limit of {format_size(limit)}.")
    if size == 0:
        raise ApiError(422, "The file is empty.")
    name = (file.name or "").strip()
    if not name or any(unicodedata.category(c) == "Cc" for c in name):
        raise ApiError(422, "The file needs a name without control characters.")
    url = url.strip()
    if len(url) > 1000 or "\x00" in url or (url and not url.startswith(("http://", "https://"))):
        raise ApiError(422, "url must be an http:// or https:// address of up to 1,000 characters.")
    try:
        checked = validate_tags(tags) if tags.strip() else None
    except TagError as exc:
        raise ApiError(422, f"tags: {exc}") from None
    document = services.document_upload(
        knowledge_base=kb, filename=name, content=file.read(limit + 1), url=url, declared_size=size, tags=checked
    )
    return 202, document_out(document)


@router.post(
    "/knowledge-bases/{knowledge_base_id}/search",
    response={200: SearchOut, **ERRORS},
    summary="Search a knowledge base, optionally scoped to tags",
    description=(
        "The chunks an answer would draw on, best first. With `tags`, only chunks of documents "
        "carrying any of them (filtered inside the vector store, so `limit` in-scope results come "
        "back whenever there are that many)."
    ),
)
def knowledge_base_search(request: HttpRequest, knowledge_base_id: Id, body: SearchIn) -> dict[str, Any]:
    kb = knowledge_base_in_organization(organization=organization(request), knowledge_base_id=knowledge_base_id)
    hits = chunks_search(knowledge_base=kb, query=body.query, limit=body.limit, tags=body.tags or None)
    return {
        "results": [
            {
                "rank": h.rank,
                "document": h.document_id,
                "source": h.source,
                "title": h.title,
                "section": h.section_label,
                "url": h.url,
                "text": h.text,
                "score": h.score,
            }
            for h in hits
        ]
    }


@router.get("/documents/{document_id}", response={200: DocumentOut, **ERRORS}, summary="Get a document's status")
def document_get(request: HttpRequest, document_id: Id) -> dict[str, Any]:
    return document_out(document_in_organization(organization=organization(request), document_id=document_id))


@router.patch(
    "/documents/{document_id}",
    response={200: DocumentOut, **ERRORS},
    summary="Change a document's tags (owner, admin); its chunks are retagged in place, nothing re-embedded",
)
def document_patch(request: HttpRequest, document_id: Id, body: DocumentPatch) -> dict[str, Any]:
    require_knowledge_manager(request)
    document = document_in_organization(organization=organization(request), document_id=document_id)
    if document.status == Document.Status.DELETING:
        raise ApiError(409, "This document is being deleted.")
    services.document_tags_set(document=document, tags=body.tags)
    document.refresh_from_db()
    return document_out(document)


@router.delete(
    "/documents/{document_id}",
    response={202: DocumentOut, **ERRORS},
    summary="Delete a document (owner, admin); its chunks go, then the row",
)
def document_delete(request: HttpRequest, document_id: Id) -> tuple[int, dict[str, Any]]:
    require_knowledge_manager(request)
    document = document_in_organization(organization=organization(request), document_id=document_id)
    services.document_delete(document=document)
    document.refresh_from_db()
    return 202, document_out(document)


@router.post(
    "/documents/{document_id}/retry",
    response={202: DocumentOut, **ERRORS},
    summary="Queue a document again (owner, admin)",
)
def document_retry(request: HttpRequest, document_id: Id) -> tuple[int, dict[str, Any]]:
    require_knowledge_manager(request)
    document = document_in_organization(organization=organization(request), document_id=document_id)
    if document.status == Document.Status.DELETING:
        raise ApiError(409, "This document is being deleted.")
    return 202, document_out(services.document_retry(document=document))
