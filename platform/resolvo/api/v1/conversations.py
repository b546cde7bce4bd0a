"""Conversations between customers and the assistant or an agent (read-only here: agents answer
through the ticket's replies)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from resolvo.api.v1.auth import organization
from resolvo.api.v1.pagination import MAX_LIMIT, Page, PageParams, paginate
from resolvo.api.v1.params import Id
from resolvo.api.v1.schemas import (
    ERRORS,
    ConversationDetailOut,
    ConversationFilters,
    ConversationOut,
    MessageOut,
    conversation_out,
    message_out,
)
from resolvo.conversations.selectors import (
    conversation_in_organization,
    conversation_messages,
    conversations_in_organization,
)

router = Router(tags=["conversations"])


@router.get(
    "/conversations", response={200: Page[ConversationOut], **ERRORS}, summary="List conversations, latest first"
)
def conversation_list(
    request: HttpRequest, filters: Query[ConversationFilters], page: Query[PageParams]
) -> dict[str, Any]:
    conversations = conversations_in_organization(
        organization=organization(request), status=filters.status or "", channel=filters.channel or ""
    )
    return paginate(
        conversations, listing="conversations", order=("-updated_at", "-id"), params=page, serialize=conversation_out
    )


@router.get(
    "/conversations/{conversation_id}",
    response={200: ConversationDetailOut, **ERRORS},
    summary="Get a conversation with its first messages",
)
def conversation_get(request: HttpRequest, conversation_id: Id) -> dict[str, Any]:
    conversation = conversation_in_organization(organization=organization(request), conversation_id=conversation_id)
    messages = list(conversation_messages(conversation=conversation).select_related("author")[: MAX_LIMIT + 1])
    return {
        **conversation_out(conversation),
        "messages": [message_out(m) for m in messages[:MAX_LIMIT]],
        "more_messages": len(messages) > MAX_LIMIT,
    }


@router.get(
    "/conversations/{conversation_id}/messages",
    response={200: Page[MessageOut], **ERRORS},
    summary="List a conversation's messages, oldest first",
)
def conversation_message_list(request: HttpRequest, conversation_id: Id, page: Query[PageParams]) -> dict[str, Any]:
    conversation = conversation_in_organization(organization=organization(request), conversation_id=conversation_id)
    return paginate(
        conversation_messages(conversation=conversation).select_related("author"),
        listing=f"messages:{conversation.pk}",
        order=("id",),
        params=page,
        serialize=message_out,
    )
