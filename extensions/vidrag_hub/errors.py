"""The service's own members of vidrag's error tree (``vidrag_kernel.errors``)."""

from __future__ import annotations

from vidrag_kernel.errors import VidragError


class Unauthenticated(VidragError):
    """No token, or one the hub does not know."""

    status = 401
    kind = "unauthenticated"


class Unavailable(VidragError):
    """Something the request needs is not running (the ingest workers, the hub)."""

    status = 503
    kind = "unavailable"


class HubUnreachable(VidragError):
    """The hub did not answer a question about the caller."""

    status = 502
    kind = "hub_unreachable"


class TooManyAttempts(VidragError):
    """The same user tried something rate-limited too often (share-link redemptions)."""

    status = 429
    kind = "rate_limited"
