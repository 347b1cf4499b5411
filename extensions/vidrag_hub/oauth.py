"""Browser logins: JupyterHub OAuth, a signed session cookie and XSRF tokens.

Kernels, the CLI and the dashboards' Python side send the user's hub token in a header
(``vidrag_hub.auth``). A *browser* (the join page, the player's ``<video>``) has no token:
it logs in through the hub's OAuth provider, as JupyterHub's own ``HubOAuth`` does for
tornado services. JupyterHub's ``HubOAuth`` is used for everything that does not need a
tornado handler: the client id and redirect URI the hub registered for this service, the
pending states (with the PKCE verifier and where to go next), the code-for-token exchange
and the token check. The cookies are set here, on Starlette responses:

- a state cookie per pending login (signed, 10 minutes, HttpOnly), so that only the browser
  that started a login can finish it (no login CSRF);
- the session cookie: the user's OAuth token for this service, signed with the cookie
  secret (tornado's signed-value format, as HubOAuth writes it), HttpOnly, SameSite=Lax,
  on the service's prefix only. The token is checked with the hub on each use (cached
  briefly), so logging out of the hub or revoking the token ends the session.

Forms carry an XSRF token derived from the session (an HMAC of the token's hash): a page
of another site can make the browser post, but cannot read the token to put in the form.

The cookie secret is ``VIDRAG_COOKIE_SECRET`` (hex or any long string); without it one is
generated at start, so browser sessions end when the service restarts (the log says so).
``HubOAuth`` keeps pending logins in this process's memory: run one web process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from vidrag_kernel.errors import VidragError

from .errors import HubUnreachable, Unauthenticated
from .settings import ServiceSettings

log = logging.getLogger("vidrag_hub")

STATE_MAX_AGE = 600  # seconds a login may take, as HubOAuth's own default
SESSION_MAX_AGE_DAYS = 14  # the signature's limit; the hub's token expiry usually ends it first
DEFAULT_CHAT_PATH = "/hub/user-redirect/voila/render/vidrag/workbench.ipynb"


class LoginFailed(Unauthenticated):
    """The OAuth handshake did not complete (a stale or foreign state, a refused code)."""

    status = 400
    kind = "login_failed"


class BadXsrf(Unauthenticated):
    """A browser form without the session's XSRF token."""

    status = 403
    kind = "xsrf"


@dataclass(frozen=True)
class BrowserSettings:
    """What browser logins need besides the service's settings; each field names its variable."""

    #: JUPYTERHUB_CLIENT_ID: the OAuth client the hub registered for the service.
    client_id: str = "service-vidrag"
    #: JUPYTERHUB_OAUTH_CALLBACK_URL: where the hub sends the browser back (default: prefix + oauth_callback).
    callback_url: str = ""
    #: JUPYTERHUB_HOST + JUPYTERHUB_BASE_URL: the hub's public origin and path (default: same origin, "/").
    hub_host: str = ""
    hub_base_url: str = "/"
    #: VIDRAG_COOKIE_SECRET: signs the session and state cookies (generated when unset).
    cookie_secret: bytes = field(default=b"", repr=False)
    #: VIDRAG_CHAT_URL: the chat dashboard a joined user is sent to (``?collection=<id>`` added).
    chat_url: str = DEFAULT_CHAT_PATH

    @classmethod
    def from_env(cls, settings: ServiceSettings, environ: Mapping[str, str] | None = None) -> BrowserSettings:
        """Read the variables JupyterHub gives a managed service, and vidrag's own two."""
        env = os.environ if environ is None else environ
        secret = env.get("VIDRAG_COOKIE_SECRET", "").strip()
        if secret:
            try:
                key = bytes.fromhex(secret)
            except ValueError:
                key = secret.encode()
        else:
            key = secrets.token_bytes(32)
            log.warning(
                "VIDRAG_COOKIE_SECRET is not set: generated a cookie secret for this run; "
                "browser logins to the service end when it restarts"
            )
        base = env.get("JUPYTERHUB_BASE_URL", "/").strip() or "/"
        chat = env.get("VIDRAG_CHAT_URL", "").strip() or (base.rstrip("/") + DEFAULT_CHAT_PATH)
        return cls(
            client_id=env.get("JUPYTERHUB_CLIENT_ID", "").strip() or f"service-{settings.service_name}",
            callback_url=env.get("JUPYTERHUB_OAUTH_CALLBACK_URL", "").strip(),
            hub_host=env.get("JUPYTERHUB_HOST", "").strip(),
            hub_base_url=base if base.endswith("/") else base + "/",
            cookie_secret=key,
            chat_url=chat,
        )


def _is_https(request: Request) -> bool:
    # behind the hub's proxy the browser's scheme arrives as X-Forwarded-Proto
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip().lower() == "https"


class BrowserLogin:
    """OAuth login with the hub, the session cookie and XSRF tokens for one service app."""

    def __init__(self, settings: ServiceSettings, browser: BrowserSettings) -> None:
        from jupyterhub.services.auth import HubOAuth

        self.settings = settings
        self.browser = browser
        self.prefix = settings.prefix
        self.cookie_name = browser.client_id
        self._secret = browser.cookie_secret
        self.oauth = HubOAuth(
            api_url=settings.hub_api_url,
            api_token=settings.hub_api_token or "unset",  # HubOAuth refuses an empty one
            oauth_client_id=browser.client_id,
            oauth_redirect_uri=browser.callback_url or self.prefix + "oauth_callback",
            base_url=self.prefix,
            hub_host=browser.hub_host,
            hub_prefix=browser.hub_base_url + "hub/",
            cache_max_age=settings.token_cache_seconds,
            oauth_state_max_age=STATE_MAX_AGE,
        )

    # -- signed values ------------------------------------------------------------------
    def _sign(self, name: str, value: str) -> str:
        from tornado.web import create_signed_value

        return create_signed_value(self._secret, name, value).decode()

    def _unsign(self, name: str, value: str | None, max_age_days: float) -> str | None:
        from tornado.web import decode_signed_value

        if not value:
            return None
        out = decode_signed_value(self._secret, name, value, max_age_days=max_age_days)
        return out.decode("ascii", "replace") if out else None

    def _cookie_args(self, request: Request) -> dict:
        return {"path": self.prefix, "httponly": True, "samesite": "lax", "secure": _is_https(request)}

    # -- the session ----------------------------------------------------------------------
    def session_token(self, request: Request) -> str | None:
        """The OAuth token in the request's session cookie, if its signature holds."""
        return self._unsign(self.cookie_name, request.cookies.get(self.cookie_name), SESSION_MAX_AGE_DAYS)

    async def user(self, request: Request, identity):
        """The logged-in browser user (a ``HubUser``), or None: no cookie, a forged one, or a
        token the hub no longer accepts (the session is over; the caller sends them to log in).
        ``HubUnreachable`` when the hub does not answer."""
        token = self.session_token(request)
        if not token:
            return None
        try:
            return await identity.user(token)
        except HubUnreachable:
            raise
        except VidragError:
            # unknown, expired, or no longer allowed on the service: log in again, and the
            # hub's answer at the callback says why if it still refuses
            return None

    def xsrf_token(self, request: Request) -> str:
        """The XSRF token of this browser session (empty without one)."""
        token = self.session_token(request)
        if not token:
            return ""
        session = hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
        return hmac.new(self._secret, f"xsrf:{session}".encode(), hashlib.sha256).hexdigest()

    def check_xsrf(self, request: Request, given: str | None) -> None:
        """Refuse a browser form whose ``_xsrf`` field is not this session's token."""
        want = self.xsrf_token(request)
        if not want or not given or not hmac.compare_digest(want, given):
            raise BadXsrf("This form is out of date or did not come from this page: reload it and try again")

    def log_out(self, response: Response, request: Request) -> None:
        response.delete_cookie(self.cookie_name, **self._cookie_args(request))

    # -- the OAuth handshake -------------------------------------------------------------
    def safe_next(self, next_url: str | None) -> str:
        """``next_url`` if it is a path of this service, else the service's root (no open redirect)."""
        value = (next_url or "").strip()
        parts = urlsplit(value)
        if parts.scheme or parts.netloc or not value.startswith(self.prefix) or "\\" in value:
            return self.prefix
        return value

    def login_url(self, next_url: str) -> str:
        """The service's own login route, coming back to ``next_url`` after the hub's login."""
        return f"{self.prefix}login?{urlencode({'next': self.safe_next(next_url)})}"

    def start(self, request: Request, next_url: str | None, response_class) -> Response:
        """Begin a login: a new state (with a PKCE verifier) in memory and in a state cookie,
        and a redirect to the hub's authorize endpoint."""
        verifier, challenge, method = self.oauth.generate_pkce_code_challenge()
        # one state cookie per pending login, so that two tabs (or a page and its <video>)
        # logging in at once do not overwrite each other's state
        cookie = f"{self.cookie_name}-oauth-state-{secrets.token_hex(4)}"
        state = self.oauth.generate_state(
            self.safe_next(next_url), code_verifier=verifier, cookie_name=cookie
        )
        params = {
            "client_id": self.oauth.oauth_client_id,
            "redirect_uri": self.oauth.oauth_redirect_uri,
            "response_type": "code",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": method,
        }
        response = response_class(
            f"{self.oauth.oauth_authorization_url}?{urlencode(params)}", status_code=302
        )
        response.set_cookie(
            cookie, self._sign(cookie, state), max_age=STATE_MAX_AGE, **self._cookie_args(request)
        )
        return response

    async def finish(self, request: Request, code: str | None, state: str | None) -> tuple[str, str, str]:
        """Complete a login: check the state against its cookie, trade the code (with the PKCE
        verifier) for the user's token. Returns (token, next URL, state cookie name)."""
        from tornado.web import HTTPError

        pending = self.oauth._decode_state(state or "") if state else {}
        cookie = pending.get("cookie_name")
        if not code or not pending or not cookie:
            raise LoginFailed(
                "This login has expired or was not started here: go back and open the page again"
            )
        signed = self._unsign(cookie, request.cookies.get(cookie), 1)
        if not signed or not hmac.compare_digest(signed, state):
            raise LoginFailed("This login was started in another browser: open the page again to log in")
        self.oauth.clear_oauth_state(state)  # a state is good for one try
        try:
            token = await self.oauth.token_for_code(
                code, code_verifier=pending.get("code_verifier"), sync=False
            )
        except HTTPError as exc:
            # the hub's reply names the problem (a used code, a wrong verifier), never the token
            raise LoginFailed(f"JupyterHub did not accept this login ({exc.log_message})") from None
        return token, pending.get("next_url") or self.prefix, cookie

    def set_session(self, response: Response, request: Request, token: str, state_cookie: str) -> None:
        """Store the user's token in the signed session cookie; drop the state cookie."""
        response.set_cookie(
            self.cookie_name, self._sign(self.cookie_name, token), **self._cookie_args(request)
        )
        response.delete_cookie(state_cookie, **self._cookie_args(request))
