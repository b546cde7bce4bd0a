"""The team pages: members and invitations (owners and admins), accepting an invitation, and
each member's personal API tokens. Thin adapters over ``organizations.services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from resolvo.dashboard.context import desk_for
from resolvo.organizations import services
from resolvo.organizations.models import ApiToken, Invitation, Membership


@login_required
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponse:
    desk = desk_for(request)
    if request.method == "POST":
        try:
            invitation, raw = services.invitation_create(
                organization=desk.organization,
                email=request.POST.get("email", ""),
                role=request.POST.get("role", Membership.Role.AGENT),
                by=request.user,
            )
        except services.TeamRefused as exc:
            messages.error(request, str(exc))
        else:
            link = request.build_absolute_uri(reverse("dashboard:invitation", args=[raw]))
            messages.success(
                request, f"Invitation for {invitation.email} created. Send them this link (shown once): {link}"
            )
        return redirect("dashboard:team")
    members = (
        Membership.objects.filter(organization=desk.organization).select_related("user").order_by("user__username")
    )
    pending = Invitation.objects.filter(organization=desk.organization, accepted_at__isnull=True).order_by(
        "-created_at"
    )
    return render(
        request,
        "dashboard/team.html",
        {"desk": desk, "members": members, "pending": pending, "roles": Membership.Role.choices, "nav": "team"},
    )


def _membership(request: HttpRequest, membership_id: int) -> Membership:
    desk = desk_for(request)
    found = Membership.objects.filter(pk=membership_id, organization=desk.organization).first()
    if found is None:
        raise Http404("No such member.")
    return found


@login_required
@require_POST
def member_change(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership(request, membership_id)
    try:
        if "remove" in request.POST:
            services.membership_remove(membership=membership, by=request.user)
            messages.success(request, f"{membership.user} is no longer a member.")
        else:
            available = request.POST.get("available")
            services.membership_change(
                membership=membership,
                by=request.user,
                role=request.POST.get("role") or None,
                available=None if available is None else available == "1",
            )
    except services.TeamRefused as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:team")


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: choose a username and password; then signed in."""
    found = services.invitation_for_token(raw=token)
    if found is None:
        return render(request, "dashboard/invitation.html", {"invitation": None}, status=404)
    error = ""
    if request.method == "POST":
        try:
            membership = services.invitation_accept(
                raw=token,
                username=request.POST.get("username", ""),
                password=request.POST.get("password", ""),
                name=request.POST.get("name", ""),
            )
        except services.TeamRefused as exc:
            error = str(exc)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("dashboard:inbox")
    return render(request, "dashboard/invitation.html", {"invitation": found, "error": error, "form": request.POST})


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """The member's personal API tokens for ``/api/v1/``: create (shown once), revoke."""
    desk = desk_for(request)
    created = ""
    if request.method == "POST":
        if request.POST.get("revoke", "").isdigit():
            token = ApiToken.objects.filter(pk=int(request.POST["revoke"]), membership=desk.membership).first()
            if token is None:
                raise Http404("No such token.")
            services.api_token_revoke(token=token, by=request.user)
            messages.success(request, f"Token {token.name} revoked.")
            return redirect("dashboard:tokens")
        _, created = services.api_token_create(membership=desk.membership, name=request.POST.get("name", ""))
    mine = ApiToken.objects.filter(membership=desk.membership).order_by("-created_at")
    return render(request, "dashboard/tokens.html", {"desk": desk, "tokens": mine, "created": created, "nav": "tokens"})
