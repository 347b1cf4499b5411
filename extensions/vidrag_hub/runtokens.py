"""Short-lived tokens the service mints for its own scheduled runs.

A scheduled batch ingest runs a notebook in a kernel the service starts, while the
schedule's owner may have no server (culled) and no token the service could use. The
kernel still goes through the service's ingest API as that user, so quotas, roles, the
Dask fan-out and the single writer apply as for any ingest. It authenticates with a run
token: ``vrun.<claims>.<signature>``, the claims (user, collection, expiry, run id)
signed with HMAC-SHA256 under a secret only the service holds.

The secret is ``VIDRAG_RUN_TOKEN_SECRET`` when set (needed when several service
processes share one URL, so that each accepts the others' tokens), else random per
process: a token then dies with the process that minted it, which is what a run wants.

A run token names one collection: ``vidrag_hub.access.RoleAccess`` shows the caller that
collection only, and ``vidrag_hub.deps`` refuses it outside that collection's routes.
Groups and the admin flag are still read from the hub on each request, so an owner who
loses their role loses it for their schedules too. Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import Unauthenticated

PREFIX = "vrun."
SECRET_VARIABLE = "VIDRAG_RUN_TOKEN_SECRET"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class RunClaims:
    """Who a run token speaks for, on which collection, until when (epoch seconds)."""

    user: str
    collection: str
    expires: float
    run: str = ""


def is_run_token(token: str | None) -> bool:
    """Whether ``token`` has a run token's shape (hub tokens never start with ``vrun.``)."""
    return bool(token) and token.startswith(PREFIX)


class RunTokens:
    """Mints and verifies run tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a run-token secret has at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunTokens:
        """The secret from ``VIDRAG_RUN_TOKEN_SECRET``, or a random one for this process."""
        env = os.environ if environ is None else environ
        value = env.get(SECRET_VARIABLE, "").strip()
        return cls(value.encode() if value else secrets.token_bytes(32))

    def __repr__(self) -> str:
        return "RunTokens(<secret>)"

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def mint(self, user: str, collection: str, *, ttl: float, run: str = "") -> str:
        """A token for ``user`` on ``collection`` only, valid ``ttl`` seconds from now."""
        claims = {"u": user, "c": collection, "e": int(time.time() + ttl), "r": run}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{PREFIX}{body}.{self._sign(body)}"

    def verify(self, token: str) -> RunClaims:
        """The claims of a token this service minted and that has not expired; else Unauthenticated."""
        try:
            body, signature = token[len(PREFIX) :].split(".")
        except ValueError:
            raise Unauthenticated("This run token is malformed") from None
        if not hmac.compare_digest(signature, self._sign(body)):
            raise Unauthenticated("This run token was not issued by this service")
        try:
            claims = json.loads(_unb64(body))
            out = RunClaims(str(claims["u"]), str(claims["c"]), float(claims["e"]), str(claims.get("r", "")))
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("This run token is malformed") from None
        if out.expires < time.time():
            raise Unauthenticated("This run token has expired")
        return out
