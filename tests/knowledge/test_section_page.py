"""The readable page of a cited section, for documents without a URL of their own: what a
customer opens from a citation under an answer."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from resolvo.knowledge import jobs, services
from resolvo.knowledge.links import SectionRef, section_from_token, section_link
from resolvo.knowledge.selectors import chunks_search

LONG = " ".join(f"Step {i}: press the pairing button on hub unit {i} and wait for the ring to glow." for i in range(60))
MANUAL = f"""# Hub <b>setup</b> guide

## Pairing the hub

{LONG}

## Cleaning

Wipe the hub with a dry cloth; never use solvents like acetone on the <script>alert(1)</script> casing.
"""


def _indexed(kb: Any, name: str, content: str, **extra: Any) -> Any:
    document = services.document_upload(knowledge_base=kb, filename=name, content=content.encode(), enqueue=False)
    if extra:
        type(document).objects.filter(pk=document.pk).update(**extra)
    outcome = jobs.documents_ingest_run(document_ids=[document.pk])[document.pk]
    assert outcome.status == "indexed", outcome
    document.refresh_from_db()
    return document


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_citation_without_url_opens_the_cited_section_with_its_neighbours(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb("acme")
    document = _indexed(kb, "hub.md", MANUAL)
    assert document.chunk_count >= 3
    type(document).objects.filter(pk=document.pk).update(title="Hub <b>setup</b> guide")  # as an admin may type it
    hits = chunks_search(knowledge_base=kb, query="pairing button hub unit 30 ring glow", limit=3)
    pairing = next(h for h in hits if "Pairing" in " ".join(h.section))
    assert "/cited/" in pairing.url and pairing.url.startswith("http://")

    page = Client().get(_path(pairing.url))
    assert page.status_code == 200
    html = page.content.decode()
    assert "noindex" in page["X-Robots-Tag"]
    assert "Hub &lt;b&gt;setup&lt;/b&gt; guide" in html and "<b>setup</b>" not in html
    assert "Pairing the hub" in html
    cited = re.search(r'<mark id="cited">(.*?)</mark>', html, re.S)
    assert cited is not None and pairing.text[:40] in cited.group(1)
    # The section around the cited chunk is there, each sentence once (chunk overlap removed),
    # and the next section is not.
    for i in (0, 30, 59):
        assert html.count(f"Step {i}: press") == 1, i
    assert "acetone" not in html


def test_html_in_the_cited_text_shows_as_text(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb("acme")
    _indexed(kb, "hub.txt", "Wipe the hub with a dry cloth; never use acetone on the <script>alert(1)</script> casing.")
    hit = next(
        h for h in chunks_search(knowledge_base=kb, query="acetone solvents cleaning", limit=3) if "acetone" in h.text
    )
    html = Client().get(_path(hit.url)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_links_cannot_be_forged_or_turned_to_another_organization(make_kb: Any, vector_store: Any) -> None:
    mine, theirs = make_kb("acme"), make_kb("globex")
    document = _indexed(theirs, "hub.md", MANUAL)
    client = Client()
    good = section_link(SectionRef(theirs.organization_id, document.pk, 0))
    assert client.get(_path(good)).status_code == 200
    # The same document asked for under another organization: not found.
    crossed = section_link(SectionRef(mine.organization_id, document.pk, 0))
    assert client.get(_path(crossed)).status_code == 404
    # A tampered token, a position the document does not have, garbage.
    token = _path(good).split("/")[2]
    assert section_from_token(token) == SectionRef(theirs.organization_id, document.pk, 0)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/cited/{tampered}/").status_code == 404
    assert client.get(_path(section_link(SectionRef(theirs.organization_id, document.pk, 999)))).status_code == 404
    assert client.get("/cited/nonsense/").status_code == 404


def test_a_deleted_document_takes_its_links_with_it(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb("acme")
    document = _indexed(kb, "hub.md", MANUAL)
    link = _path(section_link(SectionRef(kb.organization_id, document.pk, 0)))
    assert Client().get(link).status_code == 200
    services.document_delete(document=document)
    assert Client().get(link).status_code == 404


def test_a_document_with_its_own_url_is_cited_by_that_url(make_kb: Any, vector_store: Any) -> None:
    kb = make_kb("acme")
    _indexed(kb, "hub.md", MANUAL, url="https://help.example.com/hub")
    hits = chunks_search(knowledge_base=kb, query="pairing button", limit=2)
    assert hits and all(h.url == "https://help.example.com/hub" for h in hits)
