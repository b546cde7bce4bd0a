"""Public pages of the knowledge app: a readable page of a cited section (see ``links``)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from resolvo.knowledge.links import section_from_token
from resolvo.knowledge.selectors import section_read


@require_GET
def section(request: HttpRequest, token: str) -> HttpResponse:
    ref = section_from_token(token)
    page = section_read(ref=ref) if ref is not None else None
    if page is None:
        raise Http404("This section is no longer available.")
    crumbs = [part for part in page.section if part]
    if crumbs and crumbs[0].casefold() == page.document.title.casefold():
        crumbs = crumbs[1:]  # the title is the page's heading already
    response = render(request, "knowledge/section.html", {"page": page, "crumbs": crumbs})
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
