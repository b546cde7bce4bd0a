"""Download web pages and read sitemaps, for knowledge sources given as URLs.

Rules that keep a crawl bounded and on the customer's own site:

* only ``http`` and ``https`` URLs are fetched;
* redirects are followed by hand (at most ``max_redirects``) and only within the same host
  (``www.`` and the port do not count: ``example.com`` may redirect to ``www.example.com``);
* a body is streamed and dropped as soon as it passes ``max_bytes``;
* ``timeout`` bounds each network operation and the whole fetch, redirects included.

Error classes follow what a retry can change: 4xx answers, bad URLs and oversized bodies are
:class:`IngestionError` (permanent); timeouts, connection failures, 5xx, 408 and 429 are
:class:`TransientError`. Messages name the URL and say what happened in plain words.

This module does not stop a URL from pointing at a private network address; a deployment that
lets untrusted users add URLs should filter them before calling it.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import socket
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
    client: httpx.Client | None = None,
    allow_private: bool = False,
) -> FetchedPage:
    """Download ``url`` and return its body.

    ``timeout`` (seconds, > 0) bounds the whole fetch; ``max_bytes`` (> 0) bounds the decoded
    body. Pass ``client`` to reuse connections across many fetches; it must not follow redirects
    by itself. Unless ``allow_private``, every host fetched (redirects included) must resolve to
    public addresses only, so a tenant cannot make the worker read internal services (SSRF).
    Raises :class:`IngestionError` or :class:`TransientError` as described above.
    """
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
        if not allow_private:
            _check_public_host(current.host, url)
        with _translate_errors(url, timeout):
            request = client.build_request("GET", current, timeout=_remaining(deadline, url, timeout))
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


def new_client() -> httpx.Client:
    """An HTTP client set up the way :func:`fetch_url` expects (no automatic redirects)."""
    return httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT})


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


def _check_public_host(host: str, url: str) -> None:
    """Refuse hosts that are, or resolve to, loopback, private, link-local or reserved addresses.

    The check resolves the name itself; a DNS answer that changes between this check and the
    connection (rebinding) is not covered here and needs an egress firewall in production.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"Could not resolve the host name {host!r} of {url}.") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise IngestionError(
                f"{url} points to a private or local network address ({address}); fetching internal "
                "addresses is disabled (set INGEST_ALLOW_PRIVATE_NETWORKS=1 to allow it on a trusted network)."
            )


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
