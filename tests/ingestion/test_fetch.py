"""URL fetching and sitemap crawling against a real HTTP server on 127.0.0.1.

"localhost" stands in for another host: it names the same machine, so nothing could leave it
even if a redirect were wrongly followed, and the server's hit list shows whether it was.
"""

from __future__ import annotations

import gzip
import socket

import pytest

from ingestion.parse import parse_bytes
from ingestion.parse.fetch import crawl_sitemap, fetch_url
from ingestion.types import IngestionError, TransientError
from tests.httpserver import Route, serve

PAGE = b"<html><head><title>Reset</title></head><body><main><h1>Reset</h1><p>Hold the button.</p></main></body></html>"
MB = 1024 * 1024


def other_host_of(base: str, path: str) -> str:
    """The same server under another host name."""
    return base.replace("127.0.0.1", "localhost") + path


# --- fetch_url ----------------------------------------------------------------------------------


def test_a_page_is_fetched_with_a_file_name_for_the_parse_stage() -> None:
    with serve({"/articles/reset-password": Route(body=PAGE)}) as site:
        page = fetch_url(site.url("/articles/reset-password"), timeout=5, max_bytes=MB, allow_private=True)
    assert page.content == PAGE
    assert page.content_type == "text/html; charset=utf-8"
    assert page.filename == "reset-password.html"
    assert page.final_url == page.url == site.url("/articles/reset-password")
    document = parse_bytes(page.content, filename=page.filename, mime_type=page.content_type, max_bytes=MB)
    assert document.title == "Reset"
    assert document.text == "Hold the button."


def test_content_disposition_names_the_file() -> None:
    route = Route(body=b"# Guide\n\nText", content_type="application/octet-stream")
    route.headers["Content-Disposition"] = 'attachment; filename="Hub Guide.md"'
    with serve({"/download?id=7": route}) as site:
        page = fetch_url(site.url("/download?id=7"), timeout=5, max_bytes=MB, allow_private=True)
    assert page.filename == "Hub Guide.md"


def test_redirects_within_the_host_are_followed() -> None:
    routes = {
        "/old": Route(status=301, headers={"Location": "/new"}),
        "/new": Route(body=PAGE),
    }
    with serve(routes) as site:
        page = fetch_url(site.url("/old"), timeout=5, max_bytes=MB, allow_private=True)
    assert page.url == site.url("/old")
    assert page.final_url == site.url("/new")
    assert page.content == PAGE


def test_a_redirect_to_another_host_is_refused_without_following_it() -> None:
    def routes(base: str) -> dict[str, Route]:
        return {
            "/away": Route(status=302, headers={"Location": other_host_of(base, "/page")}),
            "/page": Route(body=PAGE),
        }

    with serve(routes) as site:
        with pytest.raises(IngestionError, match=r"redirected to another host \(localhost\)"):
            fetch_url(site.url("/away"), timeout=5, max_bytes=MB, allow_private=True)
        assert site.hits == ["/away"]


def test_a_redirect_loop_ends() -> None:
    routes = {"/a": Route(status=302, headers={"Location": "/b"}), "/b": Route(status=302, headers={"Location": "/a"})}
    with serve(routes) as site:
        with pytest.raises(IngestionError, match=r"Too many redirects \(more than 3\)"):
            fetch_url(site.url("/a"), timeout=5, max_bytes=MB, max_redirects=3, allow_private=True)
        assert len(site.hits) == 4


def test_a_client_error_is_permanent() -> None:
    with serve({}) as site:
        with pytest.raises(IngestionError, match=r"answered HTTP 404 Not Found\.$"):
            fetch_url(site.url("/missing"), timeout=5, max_bytes=MB, allow_private=True)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_rate_limits_are_transient(status: int) -> None:
    with serve({"/flaky": Route(status=status, body=b"busy")}) as site:
        with pytest.raises(TransientError, match=f"answered HTTP {status}"):
            fetch_url(site.url("/flaky"), timeout=5, max_bytes=MB, allow_private=True)


def test_a_slow_server_times_out_with_a_readable_message() -> None:
    with serve({"/slow": Route(body=PAGE, delay=2)}) as site:
        url = site.url("/slow")
        with pytest.raises(TransientError) as caught:
            fetch_url(url, timeout=0.3, max_bytes=MB, allow_private=True)
    assert str(caught.value) == f"Timed out after 0.3 s fetching {url}."


def test_a_body_declared_larger_than_the_limit_is_refused() -> None:
    with serve({"/big": Route(body=b"x" * 5000)}) as site:
        with pytest.raises(IngestionError, match=r"is larger than the 4 KB limit"):
            fetch_url(site.url("/big"), timeout=5, max_bytes=4096, allow_private=True)


def test_a_body_that_grows_past_the_limit_while_streaming_is_refused() -> None:
    # The Content-Length is the small compressed size; the decoded body is 2 MB.
    route = Route(body=gzip.compress(b"x" * (2 * MB)), content_type="text/plain")
    route.headers["Content-Encoding"] = "gzip"
    with serve({"/bomb": route}) as site:
        with pytest.raises(IngestionError, match=r"is larger than the 1 MB limit"):
            fetch_url(site.url("/bomb"), timeout=5, max_bytes=MB, allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/file.txt", "javascript:alert(1)"])
def test_only_http_and_https_urls_are_fetched(url: str) -> None:
    with pytest.raises(IngestionError, match="Only http and https URLs can be fetched"):
        fetch_url(url, timeout=1, max_bytes=MB, allow_private=True)


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(IngestionError, match="no host name"):
        fetch_url("http:///path", timeout=1, max_bytes=MB, allow_private=True)


def test_a_closed_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="Could not connect"):
        fetch_url(f"http://127.0.0.1:{port}/", timeout=2, max_bytes=MB, allow_private=True)


# --- crawl_sitemap ------------------------------------------------------------------------------


def urlset(*locations: str) -> bytes:
    entries = "".join(f"<url><loc>{location}</loc></url>" for location in locations)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    ).encode()


def sitemap_index(*locations: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{location}</loc></sitemap>" for location in locations)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
    ).encode()


XML = "application/xml"


def help_centre(base: str) -> dict[str, Route]:
    return {
        "/sitemap.xml": Route(
            body=sitemap_index(
                base + "/sitemap-articles.xml",
                base + "/sitemap-guides.xml.gz",
                base + "/sitemap-missing.xml",
                base + "/sitemap.xml",  # a cycle back to itself
                other_host_of(base, "/sitemap-elsewhere.xml"),
            ),
            content_type=XML,
        ),
        "/sitemap-articles.xml": Route(
            body=urlset(
                base + "/articles/1",
                base + "/articles/2#top",
                other_host_of(base, "/articles/foreign"),
                "mailto:help@example.com",
            ),
            content_type=XML,
        ),
        "/sitemap-guides.xml.gz": Route(
            body=gzip.compress(urlset(base + "/guides/a", base + "/articles/1", base + "/guides/b")),
            content_type="application/gzip",
        ),
    }


def test_a_sitemap_index_is_followed_on_the_same_host_only() -> None:
    with serve(help_centre) as site:
        pages = crawl_sitemap(site.url("/sitemap.xml"), max_pages=100, max_bytes=MB, timeout=5, allow_private=True)
        assert pages == [
            site.url("/articles/1"),
            site.url("/articles/2"),
            site.url("/guides/a"),
            site.url("/guides/b"),
        ]
        assert site.hits == [
            "/sitemap.xml",
            "/sitemap-articles.xml",
            "/sitemap-guides.xml.gz",
            "/sitemap-missing.xml",
        ]


def test_a_sitemap_crawl_stops_at_max_pages() -> None:
    with serve(help_centre) as site:
        pages = crawl_sitemap(site.url("/sitemap.xml"), max_pages=3, max_bytes=MB, timeout=5, allow_private=True)
        assert pages == [site.url("/articles/1"), site.url("/articles/2"), site.url("/guides/a")]


def test_a_sitemap_crawl_stops_when_its_byte_budget_is_spent() -> None:
    with serve(help_centre) as site:
        index_size = len(site.routes["/sitemap.xml"].body)
        articles_size = len(site.routes["/sitemap-articles.xml"].body)
        pages = crawl_sitemap(
            site.url("/sitemap.xml"), max_pages=100, max_bytes=index_size + articles_size, timeout=5, allow_private=True
        )
        assert pages == [site.url("/articles/1"), site.url("/articles/2")]


def test_a_deep_chain_of_sitemap_indexes_is_bounded() -> None:
    def chain(base: str) -> dict[str, Route]:
        routes = {f"/s{n}.xml": Route(body=sitemap_index(f"{base}/s{n + 1}.xml"), content_type=XML) for n in range(20)}
        routes["/s20.xml"] = Route(body=urlset(base + "/deep"), content_type=XML)
        return routes

    with serve(chain) as site:
        with pytest.raises(IngestionError, match="lists no pages"):
            crawl_sitemap(
                site.url("/s0.xml"), max_pages=10, max_bytes=MB, timeout=5, max_sitemaps=5, allow_private=True
            )
        assert len(site.hits) == 5


def test_a_plain_text_sitemap_is_read() -> None:
    def routes(base: str) -> dict[str, Route]:
        return {"/sitemap.txt": Route(body=f"{base}/a\n\n{base}/b\n".encode(), content_type="text/plain")}

    with serve(routes) as site:
        assert crawl_sitemap(site.url("/sitemap.txt"), max_pages=10, max_bytes=MB, timeout=5, allow_private=True) == [
            site.url("/a"),
            site.url("/b"),
        ]


def test_a_page_that_is_not_a_sitemap_is_refused() -> None:
    with serve({"/sitemap.xml": Route(body=PAGE)}) as site:
        with pytest.raises(
            IngestionError, match=r"is not a sitemap: expected <urlset> or <sitemapindex>, found <html>"
        ):
            crawl_sitemap(site.url("/sitemap.xml"), max_pages=10, max_bytes=MB, timeout=5, allow_private=True)


def test_a_missing_sitemap_is_a_permanent_error() -> None:
    with serve({}) as site:
        with pytest.raises(IngestionError, match="404"):
            crawl_sitemap(site.url("/sitemap.xml"), max_pages=10, max_bytes=MB, timeout=5, allow_private=True)


def test_a_sitemap_with_an_entity_bomb_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
        b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
        b'<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
        b'<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
        b'<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
        b'<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
        b'<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">'
        b"]><urlset><url><loc>&lol9;</loc></url></urlset>"
    )
    with serve({"/sitemap.xml": Route(body=bomb, content_type=XML)}) as site:
        with pytest.raises(IngestionError, match="is not valid XML"):
            crawl_sitemap(site.url("/sitemap.xml"), max_pages=10, max_bytes=MB, timeout=5, allow_private=True)


def test_private_and_local_addresses_are_refused_by_default() -> None:
    with serve({"/page": Route(body=b"<html><body><main><p>secret</p></main></body></html>")}) as site:
        with pytest.raises(IngestionError, match="private or local network address"):
            fetch_url(site.url("/page"), timeout=2, max_bytes=MB)
        with pytest.raises(IngestionError, match="private or local network address"):
            crawl_sitemap(site.url("/sitemap.xml"), max_pages=5, max_bytes=MB, timeout=2)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://[::1]/", "http://localhost:9/"):
        with pytest.raises(IngestionError, match="private or local"):
            fetch_url(url, timeout=1, max_bytes=MB)
