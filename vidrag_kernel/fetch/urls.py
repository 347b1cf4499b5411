"""URL checks for fetching: only http(s), and never private networks unless allowed.

The check runs before any connection is made, so a refused URL sends no traffic. The
same rule (``vet_host``) vets every connection yt-dlp opens later (see ``guard``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from ..errors import FetchFailed, Forbidden, InvalidInput

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _split(url: str):
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("Expected a URL or a file path, got an empty value")
    if any(ch.isspace() or ord(ch) < 32 for ch in url.strip()):
        raise InvalidInput(f"Malformed URL (contains spaces or control characters): {url!r}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput(f"Malformed URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise InvalidInput(f"Only http:// and https:// URLs can be fetched, not {shown} ({url})")
    if not parts.hostname:
        raise InvalidInput(f"Malformed URL (no host): {url}")
    return parts, scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    def bare(entry: str) -> str:
        entry = entry.strip().lower()
        if entry.startswith("["):  # [::1]:8080
            return entry[1:].split("]", 1)[0]
        return entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry

    return host.strip("[]") in {bare(h) for h in allow_hosts if h}


def _refused_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be fetched from, or None when it is public."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:10.0.0.1 reaches 10.0.0.1
        ip = mapped
    # most specific first: loopback and link-local addresses are also "private"
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    # e.g. carrier-grade NAT 100.64/10 (some clouds put metadata services there)
    if not ip.is_global:
        return "non-public"
    return None


Resolver = Callable[[str, int], list[tuple[int, tuple]]]
"""``resolve(host, port)``: the ``(family, sockaddr)`` pairs a TCP connection may use."""


def system_resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """The system resolver's TCP addresses for ``host`` (IP literals in any spelling too)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]


def vet_host(
    host: str, port: int, allow_hosts: Iterable[str], url: str, resolve: Resolver = system_resolve
) -> list[tuple[int, tuple]]:
    """The addresses ``host`` may be reached at, resolved once.

    Raises ``Forbidden`` when any address is internal and the host is not allowed: an
    attacker controlling DNS could otherwise return one public and one private address.
    Connecting to exactly these addresses (not resolving again) leaves no room for DNS
    rebinding. Raises ``FetchFailed`` when the host does not resolve.
    """
    bare = host.strip("[]")
    try:
        addresses = resolve(bare, port)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"Could not fetch {url}: cannot resolve host {host!r} ({exc})") from None
    if not addresses:
        raise FetchFailed(f"Could not fetch {url}: cannot resolve host {host!r}")
    if _allowed(host, allow_hosts):
        return addresses
    for _family, sockaddr in addresses:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        kind = _refused_kind(ipaddress.ip_address(address))
        if kind:
            raise Forbidden(
                f"Refusing to fetch {url}: {host} resolves to a {kind} address ({address}). "
                "Add the host to VIDRAG_FETCH_ALLOW_HOSTS if it is meant to be reachable."
            )
    return addresses


def check_url(url: str, allow_hosts: Iterable[str]) -> None:
    """Refuse URLs vidrag must not fetch.

    Raises ``InvalidInput`` for anything but a well-formed http(s) URL, and ``Forbidden``
    when the host resolves (any of its addresses) to a loopback, private, link-local,
    multicast, reserved or unspecified address, unless the host (lowercased, without
    port) is listed in ``allow_hosts``. An allowed host is not resolved here. Nothing but
    DNS resolution happens here.
    """
    _parts, _scheme, host, port = _split(url)
    if not _allowed(host, allow_hosts):
        vet_host(host, port, allow_hosts, url)


def normalize_url(url: str) -> str:
    """A stable spelling of a URL: lowercase scheme and host, no default port, no fragment."""
    parts, scheme, host, port = _split(url)
    netloc = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(url: str) -> str:
    """The source key for a URL that has no better identity (generic pages, direct media)."""
    return "url:" + hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16]
