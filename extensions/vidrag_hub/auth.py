"""Who is calling: the user's hub token, verified with JupyterHub.

Kernels, the CLI and the dashboards send the user's ``$JUPYTERHUB_API_TOKEN`` as
``Authorization: token ...`` (or ``Bearer ...``). ``HubAuth.user_for_token`` asks the
hub whose token it is; the answer is kept for at most ``token_cache_seconds`` (keyed by
the token's SHA-256; HubAuth's own default of 300 s is too long for a revoked token),
each token for a random 50-100 % of it, so a class whose tokens were first seen together
is not checked again all in the same second (the hub answers those one at a time). The
hub gates the service: a token without ``access:services!service=<name>`` is refused.

Groups and the admin flag are then read fresh from ``/hub/api/users/<name>`` with the
service's own token on every request, because a user's token may not carry
``read:users:groups`` and because a user removed from a course group must lose that
access at their next request, not when a cache expires.

The service's own scheduled runs authenticate with a run token instead
(``vidrag_hub.runtokens``: HMAC-signed by the service, one user, one collection, an
expiry); its groups and admin flag are read from the hub the same way.

No token is ever logged or put in an error: errors say what was wrong, not with what.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from .errors import HubUnreachable, Unauthenticated
from .runtokens import RunTokens, is_run_token
from .settings import ServiceSettings

#: tokens whose identity is kept at once (expired ones are dropped when it is reached)
TOKEN_CACHE_SIZE = 10_000
TOKEN_HEADER = re.compile(r"^\s*(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class HubUser:
    """The caller as the hub describes them on this request."""

    name: str
    admin: bool = False
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = field(default_factory=frozenset, repr=False)
    #: set for a scheduled run's token: the one collection this caller may reach
    collection: str | None = None


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: token ...`` or ``Bearer ...`` header."""
    if not value:
        return None
    match = TOKEN_HEADER.match(value)
    return match.group(1) if match else None


class HubIdentity:
    """Turns a token into a :class:`HubUser`, asking the hub (one per process)."""

    def __init__(self, settings: ServiceSettings) -> None:
        from jupyterhub.services.auth import HubAuth

        self.settings = settings
        self.access_scope = f"access:services!service={settings.service_name}"
        self.hub_auth = HubAuth(
            api_url=settings.hub_api_url,
            api_token=settings.hub_api_token,
            cache_max_age=settings.token_cache_seconds,
            access_scopes={self.access_scope},
        )
        self._client: httpx.AsyncClient | None = None
        #: sha256(token) -> (monotonic expiry, the hub's model of its owner)
        self._known: dict[str, tuple[float, dict]] = {}
        #: the tokens of the service's own scheduled runs (``vidrag_hub.runtokens``)
        self.run_tokens = RunTokens.from_env()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=15)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _model_for_token(self, token: str) -> dict | None:
        from tornado.web import HTTPError

        ttl = self.settings.token_cache_seconds
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and known[0] > now:
            return known[1]
        try:
            model = await self.hub_auth.user_for_token(token, use_cache=False, sync=False)
        except HTTPError as exc:
            # HubAuth's messages name the hub's URL, never the token
            raise HubUnreachable(f"Could not check your token with JupyterHub ({exc.log_message})") from None
        if ttl > 0 and model:
            if len(self._known) >= TOKEN_CACHE_SIZE:
                self._known = {k: v for k, v in self._known.items() if v[0] > now}
            self._known[key] = (now + ttl * random.uniform(0.5, 1.0), model)
        return model

    async def _fresh(self, name: str) -> dict:
        """The user's model now, read with the service's token: groups and admin flag."""
        url = f"{self.settings.hub_api_url}/users/{quote(name, safe='')}"
        try:
            reply = await self._http().get(
                url, headers={"Authorization": f"token {self.settings.hub_api_token}"}
            )
        except httpx.HTTPError:
            raise HubUnreachable(f"JupyterHub did not answer at {self.settings.hub_api_url}") from None
        if reply.status_code == 404:
            raise Unauthenticated("Your JupyterHub user no longer exists")
        if reply.status_code != 200:
            raise HubUnreachable(f"JupyterHub refused to describe user {name!r} (HTTP {reply.status_code})")
        return reply.json()

    async def exists(self, name: str) -> bool:
        """Whether the hub has a user called ``name``."""
        try:
            await self._fresh(name)
        except Unauthenticated:
            return False
        return True

    async def user(self, token: str | None) -> HubUser:
        """The caller of ``token``, with groups read now; Unauthenticated or Forbidden otherwise."""
        from jupyterhub.services.auth import check_scopes

        from vidrag_kernel.errors import Forbidden

        if not token:
            raise Unauthenticated("Log in to JupyterHub: send your hub token as 'Authorization: token ...'")
        if is_run_token(token):
            claims = self.run_tokens.verify(token)
            fresh = await self._fresh(claims.user)
            return HubUser(
                name=claims.user,
                admin=bool(fresh.get("admin")),
                groups=frozenset(fresh.get("groups") or ()),
                collection=claims.collection,
            )
        model = await self._model_for_token(token)
        if not model or not model.get("name"):
            raise Unauthenticated("JupyterHub does not know this token (expired or revoked?)")
        scopes = frozenset(model.get("scopes") or ())
        if model.get("kind", "user") != "user":
            raise Forbidden("The vidrag service serves users; this token belongs to a service")
        if not check_scopes({self.access_scope}, scopes):
            raise Forbidden(
                f"This token may not use the vidrag service: it lacks the {self.access_scope} scope"
            )
        fresh = await self._fresh(model["name"])
        return HubUser(
            name=model["name"],
            admin=bool(fresh.get("admin")),
            groups=frozenset(fresh.get("groups") or ()),
            scopes=scopes,
        )
