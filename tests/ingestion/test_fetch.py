"""URL fetching and sitemap crawling against a real HTTP server on 127.0.0.1.

"localhost" stands in for another host: it names the same machine, so nothing could leave it
even if a redirect were wrongly followed, and the server's hit list shows whether it was.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingestion.parse import parse_bytes
from ingestion.parse.fetch import crawl_sitemap, fetch_url, new_client
from ingestion.types import IngestionError, TransientError
from tests.httpserver import Route, Site, serve

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


# --- DNS rebinding: a request connects to exactly the address that was checked ------------------

PUBLIC = "93.184.216.34"  # public addresses that nothing in these tests ever connects to
OTHER_PUBLIC = "93.184.216.35"
SECRET = b"<html><body><main><p>internal secrets</p></main></body></html>"


@dataclass
class Network:
    """A resolver for made-up names and a guard on every outgoing connection.

    Successive lookups of a name set with :meth:`answer` return its addresses in turn (the last
    one repeats). Every connection is recorded; one to loopback goes through, one to an address in
    ``stand_ins`` goes to the loopback address given there (a public site played by the local
    server), and any other is refused without leaving the machine.
    """

    answers: dict[str, list[str]] = field(default_factory=dict)
    stand_ins: dict[str, str] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)

    def answer(self, name: str, *addresses: str) -> None:
        self.answers[name] = list(addresses)

    def next_address(self, name: str) -> str:
        self.lookups.append(name)
        queue = self.answers[name]
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    net = Network()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in net.answers:
            address = net.next_address(name)
            if ":" in address:
                return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not a name these tests answer") from None
        return real_getaddrinfo(host, port, family, type, proto, flags)  # an address literal: no DNS

    def connect(sock: socket.socket, address: Any) -> None:
        host, port = str(address[0]), int(address[1])
        net.connections.append((host, port))
        if host in net.stand_ins:
            return real_connect(sock, (net.stand_ins[host], port))
        if ipaddress.ip_address(host).is_loopback:
            return real_connect(sock, address)
        raise ConnectionRefusedError(f"the test network refuses connections to {host}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return net


def port_of(site: Site) -> int:
    return int(site.base.rsplit(":", 1)[1])


def on_host(site: Site, name: str, path: str) -> str:
    """The test server's URL under a made-up host name."""
    return site.base.replace("127.0.0.1", name) + path


def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_fetched(network: Network) -> None:
    network.answer("rebind.test", PUBLIC, "127.0.0.1")
    with serve({"/secret": Route(body=SECRET)}) as site:
        with pytest.raises(TransientError, match="Could not connect"):
            fetch_url(on_host(site, "rebind.test", "/secret"), timeout=2, max_bytes=MB)
        assert site.hits == []
    assert network.lookups == ["rebind.test"]
    assert network.connections == [(PUBLIC, port_of(site))]


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting(network: Network) -> None:
    network.answer("internal.test", "127.0.0.1")
    with serve({"/secret": Route(body=SECRET)}) as site:
        url = on_host(site, "internal.test", "/secret")
        with pytest.raises(IngestionError) as caught:
            fetch_url(url, timeout=2, max_bytes=MB)
        assert site.hits == []
    assert str(caught.value) == (
        f"{url} points to a private or local network address (127.0.0.1); fetching internal addresses is "
        "disabled (set INGEST_ALLOW_PRIVATE_NETWORKS=1 to allow it on a trusted network)."
    )
    assert network.connections == []


def test_a_name_with_one_private_answer_among_public_ones_is_refused(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    def two_answers(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        network.lookups.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.0.0.5", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(IngestionError, match=r"private or local network address \(10\.0\.0\.5\)"):
        fetch_url("http://mixed.test/", timeout=2, max_bytes=MB)
    assert network.lookups == ["mixed.test"]
    assert network.connections == []


def test_with_allow_private_the_resolved_address_is_pinned_and_the_name_kept(network: Network) -> None:
    network.answer("intranet.test", "127.0.0.1", "10.255.0.1")
    with serve({"/page": Route(body=PAGE)}) as site:
        url = on_host(site, "intranet.test", "/page")
        page = fetch_url(url, timeout=2, max_bytes=MB, allow_private=True)
        assert site.hits == ["/page"]
        assert site.request_headers[0]["host"] == f"intranet.test:{port_of(site)}"
    assert page.content == PAGE
    assert page.final_url == page.url == url
    assert network.lookups == ["intranet.test"]
    assert network.connections == [("127.0.0.1", port_of(site))]


def redirect_to_admin() -> dict[str, Route]:
    return {"/old": Route(status=302, headers={"Location": "/admin"}), "/admin": Route(body=SECRET)}


def test_a_redirect_to_the_same_host_name_is_checked_again(network: Network) -> None:
    network.answer("help.test", PUBLIC, "127.0.0.1")
    network.stand_ins[PUBLIC] = "127.0.0.1"  # the local server plays the public site
    with serve(redirect_to_admin()) as site:
        with pytest.raises(IngestionError, match=r"points to a private or local network address \(127\.0\.0\.1\)"):
            fetch_url(on_host(site, "help.test", "/old"), timeout=2, max_bytes=MB)
        assert site.hits == ["/old"]
        assert site.request_headers[0]["host"] == f"help.test:{port_of(site)}"
    assert network.lookups == ["help.test", "help.test"]
    assert network.connections == [(PUBLIC, port_of(site))]


def test_each_redirect_hop_connects_to_the_address_checked_for_it(network: Network) -> None:
    # The second hop is checked against OTHER_PUBLIC; a second lookup at connect time would give loopback.
    network.answer("help.test", PUBLIC, OTHER_PUBLIC, "127.0.0.1")
    network.stand_ins[PUBLIC] = "127.0.0.1"
    with serve(redirect_to_admin()) as site:
        with pytest.raises(TransientError, match="Could not connect"):
            fetch_url(on_host(site, "help.test", "/old"), timeout=2, max_bytes=MB)
        assert site.hits == ["/old"]
    assert network.lookups == ["help.test", "help.test"]
    assert network.connections == [(PUBLIC, port_of(site)), (OTHER_PUBLIC, port_of(site))]


def test_a_redirect_within_a_public_host_is_followed_on_its_pinned_address(network: Network) -> None:
    network.answer("help.test", PUBLIC)
    network.stand_ins[PUBLIC] = "127.0.0.1"
    routes = {"/old": Route(status=301, headers={"Location": "/new"}), "/new": Route(body=PAGE)}
    with serve(routes) as site:
        url = on_host(site, "help.test", "/old")
        page = fetch_url(url, timeout=2, max_bytes=MB)
        assert site.hits == ["/old", "/new"]
        assert [headers["host"] for headers in site.request_headers] == [f"help.test:{port_of(site)}"] * 2
    assert page.content == PAGE
    assert page.final_url == on_host(site, "help.test", "/new")
    assert network.lookups == ["help.test", "help.test"]
    assert {host for host, _ in network.connections} == {PUBLIC}


# --- TLS against a pinned address: SNI and the certificate check use the host name --------------


@dataclass
class Certificates:
    ca_file: Path
    server: ssl.SSLContext
    server_names: list[str | None]  # the SNI of each TLS handshake the server saw


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A test CA and a server certificate for ``secure.test`` only, signed by it."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.test")]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Resolvo test CA")])
    ca_cert = certificate("Resolvo test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = certificate("secure.test", server_key, ca_name, ca_key, ca=False)

    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain_file = tmp_path / "server.pem"
    chain_file.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain_file)
    names: list[str | None] = []
    server.sni_callback = lambda _sock, name, _ctx: names.append(name)
    return Certificates(ca_file, server, names)


def test_https_to_a_pinned_address_checks_the_certificate_for_the_host_name(
    network: Network, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))  # httpx trusts the test CA
    network.answer("secure.test", "127.0.0.1")
    with serve({"/page": Route(body=PAGE)}, tls=certificates.server) as site:
        url = on_host(site, "secure.test", "/page")
        page = fetch_url(url, timeout=2, max_bytes=MB, allow_private=True)
        assert site.request_headers[0]["host"] == f"secure.test:{port_of(site)}"
    assert page.content == PAGE
    assert page.final_url == url
    assert certificates.server_names == ["secure.test"]
    assert network.connections == [("127.0.0.1", port_of(site))]


def test_https_to_a_pinned_address_refuses_a_certificate_for_another_name(
    network: Network, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    network.answer("other.test", "127.0.0.1")
    with serve({"/page": Route(body=PAGE)}, tls=certificates.server) as site:
        with pytest.raises(TransientError, match="certificate verify failed"):
            fetch_url(on_host(site, "other.test", "/page"), timeout=2, max_bytes=MB, allow_private=True)
        assert site.hits == []
    assert certificates.server_names == ["other.test"]


# --- the client ---------------------------------------------------------------------------------


def test_fetch_url_only_takes_a_client_that_pins_addresses(network: Network) -> None:
    network.answer("plain.test", PUBLIC)
    with httpx.Client() as plain:
        with pytest.raises(TypeError, match=r"needs a client from new_client\(\)"):
            fetch_url("http://plain.test/", timeout=1, max_bytes=MB, client=plain)  # type: ignore[arg-type]
    assert network.lookups == network.connections == []


def test_the_pinned_client_refuses_a_request_without_a_checked_address(network: Network) -> None:
    with serve({"/page": Route(body=PAGE)}) as site, new_client() as client:
        with pytest.raises(RuntimeError, match="no vetted address was pinned"):
            client.get(site.url("/page"))
        assert site.hits == []
    assert network.connections == []
