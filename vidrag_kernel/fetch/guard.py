"""A connect-time guard for yt-dlp's own connections.

``check_url`` vets the URLs we know about before a download starts, but yt-dlp follows
HTTP redirects inside its request handlers (urllib and requests), out of our sight, and a
page may point at manifests or fragments we never see. So while a guarded block runs,
every TCP connection yt-dlp opens for the current context is vetted by the same rule
first. The hook wraps the two connection factories yt-dlp's HTTP handlers use; it is a
no-op outside ``guarded()`` and for other code in the process.

Fragment downloads in worker threads would not inherit the context, so callers keep
``concurrent_fragment_downloads`` at 1.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .urls import host_refusal

log = logging.getLogger(__name__)

_active: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("vidrag_fetch_guard", default=None)
_install_lock = threading.Lock()
_installed = False


@dataclass
class Guard:
    """The allow list of one guarded block and what it refused."""

    allow_hosts: tuple[str, ...]
    refused: list[str] = field(default_factory=list)

    def vet(self, host: str, port: int) -> None:
        shown = f"{host}:{port}"
        try:
            refusal = host_refusal(
                str(host), int(port), self.allow_hosts, f"{shown} (reached by a redirect or a linked URL)"
            )
        except Exception as exc:  # noqa: BLE001 - resolution errors surface as connection errors
            raise OSError(str(exc)) from None
        if refusal:
            self.refused.append(refusal)
            raise OSError(refusal)


def _wrap(original):
    def create_connection(address, *args, **kwargs):
        guard = _active.get()
        if guard is not None:
            guard.vet(address[0], address[1])
        return original(address, *args, **kwargs)

    create_connection.__wrapped__ = original
    create_connection._vidrag_guard = True
    return create_connection


def _install() -> bool:
    """Hook yt-dlp's connection factories once per process; False if they moved."""
    global _installed
    with _install_lock:
        if _installed:
            return True
        targets = []
        with contextlib.suppress(ImportError):
            from yt_dlp.networking import _urllib

            targets.append(_urllib)
        with contextlib.suppress(ImportError):
            from urllib3.util import connection as urllib3_connection

            targets.append(urllib3_connection)
        hooked = 0
        for module in targets:
            original = getattr(module, "create_connection", None)
            if original is None:
                continue
            if not getattr(original, "_vidrag_guard", False):
                module.create_connection = _wrap(original)
            hooked += 1
        _installed = hooked == len(targets) and hooked > 0
        if not _installed:
            log.warning("vidrag could not hook yt-dlp's connections; redirects are not guarded")
        return _installed


@contextlib.contextmanager
def guarded(allow_hosts: Iterable[str]) -> Iterator[Guard]:
    """Vet every connection yt-dlp opens in this context against the SSRF rule."""
    _install()
    guard = Guard(tuple(allow_hosts))
    token = _active.set(guard)
    try:
        yield guard
    finally:
        _active.reset(token)
