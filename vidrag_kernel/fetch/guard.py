"""The SSRF guard: every connection yt-dlp opens goes through a vetting proxy.

``check_url`` vets the URLs we know before a download starts, but yt-dlp follows
redirects inside its request handlers and fetches manifests, fragments and captions we
never see. So each yt-dlp session gets its own SOCKS5 proxy on 127.0.0.1 (``Guard``) and
a ``YoutubeDL`` whose request handlers, built through yt-dlp's networking framework
(``YoutubeDL.build_request_director``), send every request through that proxy, whatever
proxy an extractor or a request header asks for. yt-dlp sends the proxy host names, not
addresses (socks5h), so the proxy resolves each host once, vets every address with
``vet_host`` and connects to exactly a vetted one: a redirect hop, a fragment fetched in
a worker thread or a DNS answer that changes between check and connect cannot reach an
internal address. Because nothing depends on the calling thread, fragments download in
parallel.

It fails closed: before a session is handed out, a probe request sent with yt-dlp's own
``urlopen`` must arrive at the proxy. If it does not (a yt-dlp whose networking changed),
``MissingDependency`` says why and nothing is fetched.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import ipaddress
import logging
import secrets
import selectors
import socket
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import FetchFailed, Forbidden, InvalidInput, MissingDependency
from .urls import Resolver, system_resolve, vet_host

log = logging.getLogger(__name__)

# Protocols whose yt-dlp downloaders fetch through ``YoutubeDL.urlopen`` (so through the
# proxy). Others hand the URL to rtmpdump, ffmpeg or a websocket library of their own.
GUARDED_PROTOCOLS = frozenset(
    {
        "http",
        "https",
        "m3u8",
        "m3u8_native",
        "http_dash_segments",
        "http_dash_segments_generator",
        "ism",
        "f4m",
        "mhtml",
    }
)

_USER = "vidrag"
_BUFFER = 1 << 16
# SOCKS5 reply codes (RFC 1928)
_OK, _FAILURE, _NOT_ALLOWED, _NET_UNREACHABLE, _HOST_UNREACHABLE, _REFUSED, _TIMEOUT = 0, 1, 2, 3, 4, 5, 6


class _Closed(Exception):
    """The client went away or broke the protocol: drop the connection."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise _Closed
        data += chunk
    return data


def _reply_code(exc: OSError) -> int:
    if isinstance(exc, TimeoutError):
        return _TIMEOUT
    return {
        errno.ECONNREFUSED: _REFUSED,
        errno.ENETUNREACH: _NET_UNREACHABLE,
        errno.EHOSTUNREACH: _HOST_UNREACHABLE,
    }.get(exc.errno, _FAILURE)


class Guard:
    """A SOCKS5 proxy on 127.0.0.1 that connects only where ``vet_host`` allows.

    ``refused`` keeps the refusal messages and ``failures`` the hosts it could not
    resolve or reach (user-facing reasons for the error yt-dlp then raises); ``tunnels``
    and ``peak_tunnels`` count the connections it carried. It asks
    for a per-session password, so other local users cannot borrow it.
    """

    def __init__(
        self, allow_hosts: Iterable[str], *, timeout: float = 20.0, resolve: Resolver = system_resolve
    ) -> None:
        self.allow_hosts = tuple(allow_hosts)
        self.timeout = timeout
        self.resolve = resolve
        self.refused: list[str] = []
        self.failures: list[str] = []
        self.tunnels = 0
        self.peak_tunnels = 0
        self.probe_host = f"probe-{secrets.token_hex(8)}.vidrag-guard.invalid"
        self.probe_seen = threading.Event()
        self._password = secrets.token_urlsafe(18)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._active = 0
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(1.0)  # a backstop: close() wakes accept() itself
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="vidrag-fetch-guard", daemon=True)
        self._thread.start()

    def proxy_url(self, scheme: str = "socks5h") -> str:
        """The proxy URL yt-dlp must use (``socks5h``: the proxy resolves names)."""
        return f"{scheme}://{_USER}:{self._password}@127.0.0.1:{self.port}"

    @property
    def probe_url(self) -> str:
        """A URL only this proxy answers; proves a request went through it."""
        return f"http://{self.probe_host}/"

    def close(self) -> None:
        """Stop accepting and cut every open tunnel."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below on Linux
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the proxy --------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(
                target=self._handle, args=(client,), name="vidrag-fetch-tunnel", daemon=True
            ).start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(sock)
        if self._closed.is_set():  # closed while this connection was starting
            sock.close()
        return sock

    def _handle(self, client: socket.socket) -> None:
        upstream = None
        self._track(client)
        try:
            client.settimeout(self.timeout)
            host, port = self._handshake(client)
            upstream = self._connect(client, host, port)
            if upstream is None:
                return
            with self._lock:
                self.tunnels += 1
                self._active += 1
                self.peak_tunnels = max(self.peak_tunnels, self._active)
            try:
                self._relay(client, upstream)
            finally:
                with self._lock:
                    self._active -= 1
        except (_Closed, OSError):
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._open.discard(sock)
                    with contextlib.suppress(OSError):
                        sock.close()

    def _handshake(self, client: socket.socket) -> tuple[str, int]:
        version, count = _recv_exact(client, 2)
        methods = _recv_exact(client, count)
        if version != 5 or 2 not in methods:  # only username/password
            client.sendall(b"\x05\xff")
            raise _Closed
        client.sendall(b"\x05\x02")
        _auth_version, user_len = _recv_exact(client, 2)
        user = _recv_exact(client, user_len)
        (password_len,) = _recv_exact(client, 1)
        password = _recv_exact(client, password_len)
        if not (
            hmac.compare_digest(user, _USER.encode())
            and hmac.compare_digest(password, self._password.encode())
        ):
            client.sendall(b"\x01\x01")
            raise _Closed
        client.sendall(b"\x01\x00")
        version, command, _reserved, kind = _recv_exact(client, 4)
        if version != 5 or command != 1:  # CONNECT only: no BIND, no UDP
            self._reply(client, 7)
            raise _Closed
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
        elif kind == 3:
            (length,) = _recv_exact(client, 1)
            try:
                host = _recv_exact(client, length).decode()
            except UnicodeDecodeError:
                self._reply(client, _FAILURE)
                raise _Closed from None
        else:
            self._reply(client, 8)
            raise _Closed
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        return host.lower(), port

    def _reply(self, client: socket.socket, code: int) -> None:
        client.sendall(struct.pack("!BBBB4sH", 5, code, 0, 1, b"\0\0\0\0", 0))

    def _connect(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        if host == self.probe_host:
            self.probe_seen.set()
            self._reply(client, _NOT_ALLOWED)
            return None
        shown = f"[{host}]" if ":" in host else host
        try:
            addresses = vet_host(
                host,
                port,
                self.allow_hosts,
                f"{shown}:{port} (reached by a redirect or a linked URL)",
                self.resolve,
            )
        except Forbidden as exc:
            self.refused.append(exc.message)
            log.info("fetch guard: %s", exc.message)
            self._reply(client, _NOT_ALLOWED)
            return None
        except FetchFailed:
            self.failures.append(f"cannot resolve host {host!r}")
            self._reply(client, _HOST_UNREACHABLE)
            return None
        error: OSError = OSError(errno.EHOSTUNREACH, "no address")
        for family, sockaddr in addresses:
            upstream = socket.socket(family, socket.SOCK_STREAM)
            try:
                upstream.settimeout(self.timeout)
                self._track(upstream).connect(sockaddr)  # the vetted address itself, never the name
            except OSError as exc:
                error = exc
                with self._lock:
                    self._open.discard(upstream)
                upstream.close()
                continue
            upstream.settimeout(None)
            local = upstream.getsockname()
            packed = ipaddress.ip_address(local[0]).packed
            bound = (
                struct.pack("!BBBB", 5, _OK, 0, 1 if len(packed) == 4 else 4)
                + packed
                + struct.pack("!H", local[1])
            )
            client.sendall(bound)
            return upstream
        self.failures.append(f"cannot connect to {shown}:{port} ({error.strerror or error})")
        self._reply(client, _reply_code(error))
        return None

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(None)
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            reading = len(peers)
            while reading and not self._closed.is_set():
                events = selector.select(timeout=self.timeout * 6)
                if not events:  # idle far longer than yt-dlp would wait
                    return
                for key, _ in events:
                    sock = key.fileobj
                    data = sock.recv(_BUFFER)
                    if data:
                        peers[sock].sendall(data)
                        continue
                    selector.unregister(sock)
                    reading -= 1
                    with contextlib.suppress(OSError):
                        peers[sock].shutdown(socket.SHUT_WR)


def refuse_unguarded(formats: Iterable[dict], url: str) -> None:
    """InvalidInput when a chosen format would be downloaded outside yt-dlp's networking."""
    for fmt in formats:
        for protocol in str(fmt.get("protocol") or "https").split("+"):
            if protocol not in GUARDED_PROTOCOLS:
                raise InvalidInput(
                    f"Cannot fetch {url}: its media is streamed over {protocol}, which vidrag does not "
                    "download (only http(s), HLS and DASH)"
                )


def _guarded_class():
    """A ``YoutubeDL`` whose request handlers all go through its guard's proxy."""
    try:
        from yt_dlp import YoutubeDL
    except ImportError as exc:
        raise MissingDependency(f"Fetching URLs needs yt-dlp, which could not be imported: {exc}") from None
    if not callable(getattr(YoutubeDL, "build_request_director", None)):
        raise _not_installed("this yt-dlp has no YoutubeDL.build_request_director")

    class GuardedYoutubeDL(YoutubeDL):
        vidrag_proxy: str = ""

        def build_request_director(self, handlers, preferences=None):
            wrapped = [_through_proxy(handler, self.vidrag_proxy) for handler in handlers]
            return super().build_request_director(wrapped, preferences)

    return GuardedYoutubeDL


def _through_proxy(handler: type, proxy: str) -> type:
    """``handler`` forced to use ``proxy`` for every request and every redirect it follows."""

    def force(request: Any) -> Any:
        # replaces whatever an extractor or a Ytdl-Request-Proxy header asked for
        request.proxies = {"all": proxy}
        return request

    class Vetted(handler):
        # keep the key and name: yt-dlp looks some handlers up by them
        RH_KEY = handler.RH_KEY
        RH_NAME = handler.RH_NAME

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{**kwargs, "proxies": {"all": proxy}})

        def validate(self, request):
            return super().validate(force(request))

        def send(self, request):
            return super().send(force(request))

    Vetted.__name__ = Vetted.__qualname__ = f"Vetted{handler.__name__}"
    return Vetted


def _not_installed(why: str) -> MissingDependency:
    return MissingDependency(
        f"vidrag's fetch guard could not be installed ({why}), so nothing was fetched. "
        "Install a yt-dlp release vidrag supports: pip install --upgrade 'vidrag'"
    )


@contextlib.contextmanager
def guarded_downloader(
    params: dict[str, Any],
    allow_hosts: Iterable[str],
    *,
    timeout: float = 20.0,
    resolve: Resolver = system_resolve,
    proxy_scheme: str = "socks5h",
) -> Iterator[tuple[Any, Guard]]:
    """A ``YoutubeDL`` built from ``params`` whose every connection the guard vets.

    Raises ``MissingDependency`` (and fetches nothing) when the guard cannot be put in
    yt-dlp's path; yt-dlp's own errors (a bad option, an unreadable cookies file) pass
    through for the caller to translate. ``resolve`` and ``proxy_scheme`` exist for
    tests; the defaults are the only safe production values.
    """
    cls = _guarded_class()
    from yt_dlp.networking.common import Request
    from yt_dlp.networking.exceptions import RequestError

    with (
        Guard(allow_hosts, timeout=timeout, resolve=resolve) as guard,
        tempfile.TemporaryDirectory() as no_ffmpeg,
    ):
        proxy = guard.proxy_url(proxy_scheme)
        forced = {
            "proxy": proxy,
            # ffmpeg, rtmpdump & co. open their own connections, outside the proxy: yt-dlp
            # downloads natively and finds no ffmpeg (an empty directory) to hand streams to.
            "external_downloader": {"default": "native"},
            "hls_prefer_native": True,
            "ffmpeg_location": no_ffmpeg,
        }
        ydl = cls({**params, **forced})  # the caller translates yt-dlp's option errors
        ydl.vidrag_proxy = proxy
        try:
            try:
                ydl.urlopen(Request(guard.probe_url)).close()
            except RequestError as exc:  # the proxy refuses the probe on purpose
                failure = str(exc)
            else:
                failure = "the probe got an answer from elsewhere"
            if not guard.probe_seen.is_set():
                raise _not_installed(f"yt-dlp's requests did not reach the guard's proxy: {failure}")
            yield ydl, guard
        finally:
            try:
                ydl.close()
            except Exception as exc:  # noqa: BLE001 - e.g. an unwritable cookies file
                log.warning("yt-dlp did not close cleanly: %s", exc)
