"""Download web pages and read sitemaps, for knowledge sources given as URLs.

Rules that keep a crawl bounded and on the customer's own site:

* only ``http`` and ``https`` URLs are fetched;
* redirects are followed by hand (at most ``max_redirects``) and only within the same host
  (``www.`` and the port do not count: ``example.com`` may redirect to ``www.example.com``);
* a body is streamed and dropped as soon as it passes ``max_bytes``;
* ``timeout`` bounds each network operation and the whole fetch, redirects included;
* unless ``allow_private``, a host that resolves to a loopback, private, link-local or otherwise
  non-public address is refused, so a tenant cannot make the worker read internal services (SSRF).

The host name of every request (the first one and each redirect hop) is resolved once, here; the
request then connects to exactly the address that was checked (see :class:`PinnedClient`) while the
``Host`` header, TLS SNI and certificate check keep the host name. A DNS answer that changes between
the check and the connection (DNS rebinding) therefore cannot point the request elsewhere. With
``allow_private`` nothing is refused, but the resolved address is pinned all the same.

Error classes follow what a retry can change: 4xx answers, bad URLs, private addresses and oversized
bodies are :class:`IngestionError` (permanent); timeouts, failed name lookups, connection failures,
5xx, 408 and 429 are :class:`TransientError`. Messages name the URL and say what happened in plain
words.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from urllib.parse import unquote
from xml.etree import ElementTree

import httpx

from ingestion.sizes import format_size
from ingestion.types import IngestionError, TransientError

logger = logging.getLogger(__name__)

USER_AGENT = "ResolvoBot/1.0 (knowledge-base ingestion)"

_RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})

# Request extension carrying the address fetch_url vetted for a request; read by _PinnedTransport.
_PINNED_ADDRESS = "resolvo.pinned_address"


@dataclass(frozen=True)
class FetchedPage:
    """One downloaded resource.

    ``url`` is the URL asked for and ``final_url`` the one that answered after redirects.
    ``content_type`` is the ``Content-Type`` header as sent ("" when missing). ``filename`` is a
    name for the parse stage: from ``Content-Disposition``, else the last part of the URL path,
    with an extension taken from the content type when the path has none.
    """

    url: str
    final_url: str
    content: bytes
    content_type: str
    filename: str


def fetch_url(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    max_redirects: int = 5,
    client: PinnedClient | None = None,
    allow_private: bool = False,
) -> FetchedPage:
    """Download ``url`` and return its body.

    ``timeout`` (seconds, > 0) bounds the whole fetch; ``max_bytes`` (> 0) bounds the decoded
    body. Pass ``client`` (from :func:`new_client`) to reuse connections across many fetches.
    Unless ``allow_private``, every host fetched (redirects included) must resolve to public
    addresses only, so a tenant cannot make the worker read internal services (SSRF); either way
    each request connects to the address its host name was resolved to here, never resolving it
    again. Raises :class:`IngestionError` or :class:`TransientError` as described above.
    """
    if client is not None and not isinstance(client, PinnedClient):
        raise TypeError("fetch_url needs a client from new_client(), which connects only to vetted addresses.")
    if client is None:
        with new_client() as own_client:
            return fetch_url(
                url,
                timeout=timeout,
                max_bytes=max_bytes,
                max_redirects=max_redirects,
                client=own_client,
                allow_private=allow_private,
            )
    deadline = time.monotonic() + timeout
    start = _checked_url(url)
    current = start
    for _ in range(max_redirects + 1):
        address = _pinned_address(current, url, allow_private=allow_private)
        with _translate_errors(url, timeout):
            request = client.build_request(
                "GET", current, timeout=_remaining(deadline, url, timeout), extensions={_PINNED_ADDRESS: address}
            )
            response = client.send(request, stream=True)
            try:
                if response.is_redirect:
                    current = _redirect_target(start, response)
                    continue
                _check_status(response, url)
                content = _read_body(response, url, max_bytes, deadline, timeout)
            finally:
                response.close()
        return FetchedPage(
            url=url,
            final_url=str(response.url),
            content=content,
            content_type=response.headers.get("content-type", ""),
            filename=_filename(response),
        )
    raise IngestionError(f"Too many redirects (more than {max_redirects}) fetching {url}.")


def new_client() -> PinnedClient:
    """An HTTP client set up the way :func:`fetch_url` expects (pinned addresses, no automatic redirects)."""
    return PinnedClient()


class PinnedClient(httpx.Client):
    """An HTTP client that connects each request only to the address :func:`fetch_url` vetted for it.

    It never resolves a host name itself and never goes through a proxy (HTTP(S)_PROXY variables are
    ignored, as a proxy would resolve the name again). A request sent without a vetted address is
    refused with :class:`RuntimeError`: send requests through :func:`fetch_url`, not ``get()``.
    Redirects are not followed here; :func:`fetch_url` follows them hop by hop, vetting each one.
    """

    def __init__(self) -> None:
        super().__init__(transport=_PinnedTransport(), follow_redirects=False, headers={"User-Agent": USER_AGENT})


class _PinnedTransport(httpx.BaseTransport):
    """Send each request to the IP address in its ``resolvo.pinned_address`` extension.

    The URL handed to httpcore carries the IP, so the socket connects there without a DNS lookup;
    the ``Host`` header stays the one built from the host name, and httpcore's ``sni_hostname``
    extension makes TLS send that name (SNI) and check the certificate against it. This uses only
    documented httpx API (a transport and the ``sni_hostname`` extension), no private attributes.

    httpcore keys kept-alive connections by scheme, host and port, here the IP. Each host name
    therefore gets its own pool: a connection whose certificate was checked for one name never
    carries a request for another name at the same address, and a request pinned to a new address
    opens a new connection instead of reusing one to an address checked earlier.
    """

    def __init__(self) -> None:
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = request.extensions.get(_PINNED_ADDRESS)
        if not isinstance(address, str) or not address:
            raise RuntimeError(
                f"Refusing to send {request.method} {request.url}: no vetted address was pinned for it "
                "(send requests through fetch_url)."
            )
        name = request.url.raw_host.decode("ascii")
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # keeps the Host header with the name
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": name},
        )
        return self._pool_for(name).handle_request(pinned)

    def _pool_for(self, name: str) -> httpx.HTTPTransport:
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                pool = self._pools[name] = httpx.HTTPTransport()
            return pool

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()


def crawl_sitemap(
    url: str,
    *,
    max_pages: int,
    max_bytes: int,
    timeout: float,
    max_sitemaps: int = 50,
    allow_private: bool = False,
) -> list[str]:
    """Return the page URLs listed by the sitemap at ``url``, in order, without duplicates.

    Sitemap indexes are followed, each sitemap at most once and at most ``max_sitemaps`` in all,
    so cycles end. Only pages on the sitemap's own host are kept, at most ``max_pages`` (> 0).
    ``max_bytes`` bounds all sitemap files together (gzip-compressed ones after unpacking);
    when it runs out, the pages found so far are returned. ``timeout`` applies to each fetch.
    XML sitemaps (``<urlset>``, ``<sitemapindex>``) and plain-text ones (one URL per line) are
    read. Raises :class:`IngestionError` when the first sitemap cannot be read or lists no
    pages on its host; a nested sitemap that is missing or broken is skipped.
    """
    start = _checked_url(url)
    pages: dict[str, None] = {}  # an ordered set
    queue: deque[str] = deque([str(start)])
    seen = {str(start)}
    budget = max_bytes
    fetched = 0
    with new_client() as client:
        while queue and len(pages) < max_pages and fetched < max_sitemaps and budget > 0:
            sitemap_url = queue.popleft()
            is_first = fetched == 0
            fetched += 1
            try:
                page = fetch_url(
                    sitemap_url, timeout=timeout, max_bytes=budget, client=client, allow_private=allow_private
                )
                content = _gunzip(page.content, budget, sitemap_url)
                kind, locations = parse_sitemap(content, sitemap_url)
            except IngestionError:
                if is_first:
                    raise
                logger.warning("Skipping unreadable nested sitemap %s", sitemap_url, exc_info=True)
                continue
            budget -= len(content)
            for location in locations:
                target = _same_host_url(location, start)
                if target is None:
                    continue
                if kind == "sitemapindex":
                    if target not in seen:
                        seen.add(target)
                        queue.append(target)
                elif len(pages) < max_pages:
                    pages[target] = None
    if not pages:
        raise IngestionError(f"The sitemap at {url} lists no pages on {start.host}.")
    return list(pages)


def parse_sitemap(content: bytes, url: str) -> tuple[str, list[str]]:
    """Return ``(kind, locations)`` of one sitemap file.

    ``kind`` is ``"urlset"`` (locations are pages) or ``"sitemapindex"`` (locations are more
    sitemaps). A body that is not XML is read as a plain-text sitemap: one URL per line.
    ElementTree is safe here: it never loads external entities, and the bundled expat (2.4.1
    or newer) refuses entity-expansion bombs.
    """
    stripped = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"<"):
        return "urlset", _text_sitemap(stripped)
    try:
        root = ElementTree.fromstring(stripped)  # noqa: S314 - safe with expat >= 2.4.1, see docstring
    except ElementTree.ParseError as exc:
        raise IngestionError(f"The sitemap at {url} is not valid XML: {exc}.") from exc
    kind = _local_name(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise IngestionError(
            f"The page at {url} is not a sitemap: expected <urlset> or <sitemapindex>, found <{kind}>."
        )
    locations = []
    for entry in root:
        for child in entry:
            if _local_name(child.tag) == "loc" and child.text and child.text.strip():
                locations.append(child.text.strip())
    return kind, locations


def _text_sitemap(content: bytes) -> list[str]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip().startswith("http")]


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _gunzip(content: bytes, limit: int, url: str) -> bytes:
    """Unpack a gzip-compressed sitemap (``sitemap.xml.gz``) without exceeding ``limit``."""
    if not content.startswith(b"\x1f\x8b"):
        return content
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        unpacked = decompressor.decompress(content, limit + 1)
    except zlib.error as exc:
        raise IngestionError(f"The sitemap at {url} is not valid gzip data: {exc}.") from exc
    if len(unpacked) > limit:
        raise IngestionError(f"The sitemap at {url} unpacks to more than the {format_size(limit)} limit.")
    return unpacked


def _checked_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise IngestionError(f"Not a valid URL: {url}") from exc
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "none"
        raise IngestionError(f"Only http and https URLs can be fetched (got {scheme}): {url}")
    if not parsed.host:
        raise IngestionError(f"The URL has no host name: {url}")
    return parsed


def _pinned_address(target: httpx.URL, url: str, *, allow_private: bool) -> str:
    """Resolve the host of ``target`` once and return the address the request must connect to.

    Unless ``allow_private``, every address the name resolves to must be public: a host that is,
    or resolves to, a loopback, private, link-local, shared or reserved address is refused, even
    when only one of its answers is. The first address is returned (the one a plain connection
    would try first) and the caller connects to exactly it, so the check and the connection
    cannot disagree. ``url`` is the URL the caller asked for, used in messages.
    """
    host = target.raw_host.decode("ascii")  # the IDNA form, as sent in Host and SNI
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"Could not resolve the host name {target.host!r} of {url}.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TransientError(f"The host name {target.host!r} of {url} resolved to no address.")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global:
                raise IngestionError(
                    f"{url} points to a private or local network address ({ip}); fetching internal addresses "
                    "is disabled (set INGEST_ALLOW_PRIVATE_NETWORKS=1 to allow it on a trusted network)."
                )
    return addresses[0]


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")


def _same_host_url(location: str, start: httpx.URL) -> str | None:
    try:
        target = _checked_url(location)
    except IngestionError:
        return None
    if _site(target.host) != _site(start.host):
        return None
    return str(target.copy_with(fragment=None))


def _redirect_target(start: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location", "").strip()
    if not location:
        raise IngestionError(f"{start} answered with a redirect (HTTP {response.status_code}) but no target.")
    target = _checked_url(str(response.url.join(location)))
    if _site(target.host) != _site(start.host):
        raise IngestionError(
            f"{start} redirected to another host ({target.host}); only pages on {start.host} "
            "are fetched. Add the final URL instead."
        )
    return target


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    description = f"{url} answered HTTP {status} {response.reason_phrase}".rstrip()
    if status >= 500 or status in _RETRYABLE_CLIENT_ERRORS:
        raise TransientError(f"{description}; it will be tried again later.")
    raise IngestionError(f"{description}.")


def _read_body(response: httpx.Response, url: str, max_bytes: int, deadline: float, timeout: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(url, max_bytes)
        chunks.append(chunk)
        _remaining(deadline, url, timeout)
    return b"".join(chunks)


def _too_large(url: str, max_bytes: int) -> IngestionError:
    return IngestionError(f"The page at {url} is larger than the {format_size(max_bytes)} limit.")


def _remaining(deadline: float, url: str, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(url, timeout)
    return left


def _timed_out(url: str, timeout: float) -> TransientError:
    return TransientError(f"Timed out after {timeout:g} s fetching {url}.")


@contextmanager
def _translate_errors(url: str, timeout: float) -> Iterator[None]:
    """Turn httpx exceptions into the two error classes of the ingestion pipeline."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise _timed_out(url, timeout) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise IngestionError(f"Not a valid URL: {url} ({exc}).") from exc
    except httpx.DecodingError as exc:
        raise IngestionError(f"The response from {url} could not be decoded: {exc}.") from exc
    except httpx.ConnectError as exc:
        raise TransientError(f"Could not connect to fetch {url}: {exc}.") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"Fetching {url} failed: {exc}.") from exc


def _filename(response: httpx.Response) -> str:
    name = _disposition_filename(response.headers.get("content-disposition", ""))
    if not name:
        name = unquote(response.url.path.rsplit("/", 1)[-1]) or "index"
    if not PurePosixPath(name).suffix:
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        name += mimetypes.guess_extension(content_type) or ""
    return name


def _disposition_filename(header: str) -> str:
    if not header:
        return ""
    message = Message()
    message["content-disposition"] = header
    name = message.get_filename() or ""
    return PurePosixPath(name.replace("\\", "/")).name
