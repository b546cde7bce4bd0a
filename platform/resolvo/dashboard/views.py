"""The agent dashboard: server-rendered pages and htmx partials over the tickets services.

Thin adapters: every read goes through ``tickets.selectors`` (which start from the member's
organization, so another organization's ids answer 404), every write through
``tickets.services``. Forms post and redirect (they work without JavaScript); htmx swaps the part
of the page that changed. Live parts are server-sent event streams woken by ``resolvo.live``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from resolvo import live
from resolvo.answers import sse
from resolvo.answers.models import AnswerTrace
from resolvo.api import ratelimit
from resolvo.api.streaming import frames_from_thread, sse_response
from resolvo.conversations import services as conversations
from resolvo.dashboard.context import SESSION_KEY, Desk, desk_for
from resolvo.tickets import selectors, services
from resolvo.tickets.models import CannedResponse, Draft, Ticket

PAGE_SIZE = 25
THREAD_LATEST = 100
"""A ticket page shows the latest messages of a long thread, with a link to the rest."""


class SignIn(LoginView):
    """Django's sign-in, with a limit on attempts per client IP (429 with Retry-After)."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            ratelimit.check(login=str(request.META.get("REMOTE_ADDR") or "unknown"))
        except ratelimit.RateLimited as exc:
            response = render(request, self.template_name, {"form": self.get_form(), "limited": str(exc)}, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return super().post(request, *args, **kwargs)


def _refused(request: HttpRequest, ticket: Ticket, exc: Exception) -> HttpResponse:
    """The reason, as text for a script (htmx, fetch) or as a message on the ticket page."""
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponse(str(exc), status=422, content_type="text/plain; charset=utf-8")
    messages.error(request, str(exc))
    return redirect("dashboard:ticket", ticket_id=ticket.pk)


def _ticket(request: HttpRequest, ticket_id: int) -> Ticket:
    try:
        return selectors.ticket_for_member(user=request.user, ticket_id=ticket_id)
    except selectors.TicketNotFound:
        raise Http404("No such ticket.") from None


# --- the inbox ------------------------------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:inbox")


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Work in another of the member's organizations."""
    value = request.POST.get("organization", "")
    desk = desk_for(request)
    chosen = next((m for m in desk.memberships if str(m.organization_id) == value), None)
    if chosen is not None:
        request.session[SESSION_KEY] = chosen.organization_id
    return redirect("dashboard:inbox")


def _without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    desk = desk_for(request)
    filters = selectors.InboxFilter.from_query(request.GET)
    tickets = selectors.tickets_for_inbox(organization=desk.organization, user=request.user, filters=filters)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "desk": desk,
        "filters": filters,
        "page": page,
        "counts": selectors.inbox_counts(organization=desk.organization, user=request.user),
        "members": selectors.members_of(organization=desk.organization),
        "tags": desk.organization.tags.order_by("name").values_list("name", flat=True)[:100],
        "statuses": selectors.STATUS_FILTERS,
        "priorities": Ticket.Priority.choices,
        "channels": Ticket.Channel.choices,
        "sorts": selectors.SORTS,
        "query": _without_page(request),
        "refresh_url": request.get_full_path(),
        "nav": "inbox",
    }
    if request.htmx and request.htmx.target == "inbox-results":  # type: ignore[attr-defined]
        return render(request, "dashboard/_inbox_results.html", {**context, "partial": True})
    return render(request, "dashboard/inbox.html", context)


# --- one ticket -----------------------------------------------------------------------------------


def _ticket_context(request: HttpRequest, ticket: Ticket, desk: Desk) -> dict[str, Any]:
    whole = request.GET.get("thread") == "all"
    thread = selectors.ticket_thread(ticket=ticket, latest=None if whole else THREAD_LATEST + 1)
    earlier = not whole and len(thread) > THREAD_LATEST
    canned = [
        (c, services.canned_render(canned=c, ticket=ticket, agent=request.user))
        for c in CannedResponse.objects.filter(organization=ticket.organization).order_by("title")
    ]
    return {
        "desk": desk,
        "ticket": ticket,
        "thread": thread[1:] if earlier else thread,
        "earlier": earlier,
        "notes": selectors.ticket_notes(ticket=ticket),
        "changes": selectors.ticket_changes(ticket=ticket),
        "members": selectors.members_of(organization=ticket.organization),
        "tag_names": ", ".join(t.name for t in ticket.tags.all()),
        "canned": canned,
        "statuses": Ticket.Status.choices,
        "priorities": Ticket.Priority.choices,
        "open_drafts": Draft.objects.filter(ticket=ticket, outcome=Draft.Outcome.PENDING, author_id=request.user.pk)[
            :1
        ],
        "reply_max": services.REPLY_MAX_CHARS,
    }


@login_required
@require_GET
def ticket(request: HttpRequest, ticket_id: int) -> HttpResponse:
    found = _ticket(request, ticket_id)
    desk = desk_for(request, organization=found.organization)
    context = _ticket_context(request, found, desk)
    part = request.htmx.target if request.htmx else None  # type: ignore[attr-defined]
    if part in ("thread", "sidebar"):
        return render(request, f"dashboard/_ticket_{part}.html", context)
    return render(request, "dashboard/ticket.html", context)


@login_required
@require_POST
def ticket_reply(request: HttpRequest, ticket_id: int) -> HttpResponse:
    found = _ticket(request, ticket_id)
    draft = None
    if request.POST.get("draft", "").isdigit():
        draft = Draft.objects.filter(pk=int(request.POST["draft"]), ticket=found).first()
    try:
        services.ticket_reply(ticket=found, agent=request.user, text=request.POST.get("text", ""), draft=draft)
        if request.POST.get("then") == "resolve":
            services.ticket_set_status(ticket=found, actor=request.user, status=Ticket.Status.RESOLVED)
    except services.TicketRefused as exc:
        return _refused(request, found, exc)
    return redirect("dashboard:ticket", ticket_id=found.pk)


@login_required
@require_POST
def ticket_note(request: HttpRequest, ticket_id: int) -> HttpResponse:
    found = _ticket(request, ticket_id)
    try:
        services.ticket_note_add(ticket=found, author=request.user, text=request.POST.get("text", ""))
    except services.TicketRefused as exc:
        return _refused(request, found, exc)
    return redirect("dashboard:ticket", ticket_id=found.pk)


@login_required
@require_POST
def ticket_update(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Status, priority, assignee and tags: whichever the form sends."""
    found = _ticket(request, ticket_id)
    post = request.POST
    try:
        if "status" in post:
            services.ticket_set_status(ticket=found, actor=request.user, status=post["status"])
        if "priority" in post:
            services.ticket_set_priority(ticket=found, actor=request.user, priority=post["priority"])
        if "assignee" in post:
            value = post["assignee"]
            member = (
                selectors.members_of(organization=found.organization).filter(user_id=int(value)).first()
                if value.isdigit()
                else None
            )
            if value and member is None:
                raise services.TicketRefused("Tickets can only be assigned to members of the organization.")
            services.ticket_assign(ticket=found, actor=request.user, assignee=member.user if member else None)
        if "tags" in post:
            services.ticket_set_tags(ticket=found, actor=request.user, names=post["tags"].split(","))
    except services.TicketRefused as exc:
        return _refused(request, found, exc)
    return redirect("dashboard:ticket", ticket_id=found.pk)


@login_required
@require_POST
def ticket_take(request: HttpRequest, ticket_id: int) -> HttpResponse:
    found = _ticket(request, ticket_id)
    try:
        services.ticket_assign(ticket=found, actor=request.user, assignee=request.user)
    except services.TicketRefused as exc:
        return _refused(request, found, exc)
    return redirect("dashboard:ticket", ticket_id=found.pk)


@login_required
@require_POST
def ticket_typing(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The agent is typing a reply: the customer's widget and other agents on the page see it."""
    found = _ticket(request, ticket_id)
    name = request.user.get_full_name() or request.user.get_username()  # type: ignore[union-attr]
    if found.conversation is not None:
        conversations.conversation_typing(conversation=found.conversation, role="agent", name=name)
    live.publish(f"ticket:{found.pk}", {"typing": name, "by": request.user.pk})
    return HttpResponse(status=204)


# --- AI drafts ------------------------------------------------------------------------------------


@login_required
@require_POST
def draft_create(request: HttpRequest, ticket_id: int) -> HttpResponseBase:
    """Stream a cited draft as server-sent events (the answer protocol, then ``draft`` with the
    saved draft's id). Nothing reaches the customer until the agent sends it."""
    found = _ticket(request, ticket_id)
    user = request.user

    def produce() -> Iterator[str]:
        try:
            for item in services.draft_stream(ticket=found, agent=user):
                if isinstance(item, Draft):
                    yield sse.frame("draft", {"id": item.pk, "abstained": item.abstained})
                else:
                    yield sse.encode(item)
        except services.TicketRefused as exc:
            yield sse.frame("error", {"message": str(exc), "handoff": False})

    return sse_response(frames_from_thread(produce))


@login_required
@require_POST
def draft_discard(request: HttpRequest, ticket_id: int, draft_id: int) -> HttpResponse:
    found = _ticket(request, ticket_id)
    draft = Draft.objects.filter(pk=draft_id, ticket=found).first()
    if draft is None:
        raise Http404("No such draft.")
    services.draft_decide(draft=draft, agent=request.user, outcome=Draft.Outcome.DISCARDED)
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponse(status=204)
    return redirect("dashboard:ticket", ticket_id=found.pk)


# --- answer traces --------------------------------------------------------------------------------


@login_required
@require_GET
def trace(request: HttpRequest, trace_id: int) -> HttpResponse:
    """What the assistant retrieved and did for one answer (scores, timings, citations)."""
    desk = desk_for(request)
    found = AnswerTrace.objects.filter(pk=trace_id, organization__memberships__user_id=request.user.pk or 0).first()
    if found is None:
        raise Http404("No such answer trace.")
    return render(request, "dashboard/trace.html", {"desk": desk, "trace": found})


# --- live -----------------------------------------------------------------------------------------


async def _member_or_none(request: HttpRequest) -> Any:
    user = await request.auser()
    return user if user.is_authenticated else None


async def inbox_live(request: HttpRequest) -> HttpResponseBase:
    """``changed`` whenever a ticket or conversation of the organization changes (the inbox
    re-fetches its rows, at most once a second)."""
    user = await _member_or_none(request)
    if user is None:
        return HttpResponseForbidden()
    desk = await sync_to_async(desk_for)(request)
    channel = f"organization:{desk.organization.pk}"

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.DASHBOARD_STREAM_SECONDS
        yield "retry: 3000\n\n"
        async with live.subscribe(channel) as notes:
            while (left := deadline - loop.time()) > 0:
                note = await notes.get(timeout=min(left, settings.API_EVENTS_KEEPALIVE_SECONDS))
                if note is None:
                    yield ": keep-alive\n\n"
                    continue
                await asyncio.sleep(1)  # let a burst of changes settle into one refresh
                while await notes.get(timeout=0) is not None:
                    pass
                yield sse.frame("changed", {})

    return sse_response(stream())


async def ticket_live(request: HttpRequest, ticket_id: int) -> HttpResponseBase:
    """What happens on one ticket while an agent has it open: the customer's messages and
    typing, other agents' changes, who else is viewing (announced every keep-alive)."""
    user = await _member_or_none(request)
    if user is None:
        return HttpResponseForbidden()
    try:
        found = await sync_to_async(selectors.ticket_for_member)(user=user, ticket_id=ticket_id)
    except selectors.TicketNotFound:
        raise Http404("No such ticket.") from None
    me = user.get_full_name() or user.get_username()

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.DASHBOARD_STREAM_SECONDS
        yield "retry: 3000\n\n"
        async with (
            live.subscribe(f"ticket:{found.pk}") as ticket_notes,
            live.subscribe(f"conversation:{found.conversation_id}") as conversation_notes,
        ):
            try:
                while (left := deadline - loop.time()) > 0:
                    await asyncio.to_thread(live.publish, f"ticket:{found.pk}", {"viewing": me, "by": user.pk})
                    wait = min(left, settings.API_EVENTS_KEEPALIVE_SECONDS)
                    async for frame in _merge(ticket_notes, conversation_notes, wait, user.pk):
                        yield frame
            finally:
                await asyncio.to_thread(live.publish, f"ticket:{found.pk}", {"left": me, "by": user.pk})

    return sse_response(stream())


async def _merge(ticket_notes: Any, conversation_notes: Any, seconds: float, me: int) -> AsyncIterator[str]:
    """Frames from both subscriptions for ``seconds``: ``thread`` (re-fetch the conversation),
    ``sidebar`` (re-fetch the ticket's fields), ``typing`` and ``presence`` (shown as is)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while (left := until - loop.time()) > 0:
        t = asyncio.ensure_future(ticket_notes.get(timeout=left))
        c = asyncio.ensure_future(conversation_notes.get(timeout=left))
        done, pending = await asyncio.wait({t, c}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            note = task.result()
            if note is None:
                continue
            if task is c:
                if "typing" in note:
                    if note["typing"] == "customer":
                        yield sse.frame("typing", {"who": "The customer", "on": note.get("on", True)})
                else:
                    yield sse.frame("thread", {})
            elif note.get("by") == me:
                continue
            elif "viewing" in note:
                yield sse.frame("presence", {"name": note["viewing"], "here": True})
            elif "left" in note:
                yield sse.frame("presence", {"name": note["left"], "here": False})
            elif "typing" in note:
                yield sse.frame("typing", {"who": note["typing"], "on": True})
            else:
                yield sse.frame("sidebar", {"field": note.get("field", "")})
