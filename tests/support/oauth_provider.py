"""An OAuth2 provider on 127.0.0.1 shaped like GitHub's and Google's, for real login tests.

GitHub or Google cannot be reached from the tests, so this server speaks their protocol
to OAuthenticator: the authorization-code flow (``authorize`` redirects back with
``code`` and the untouched ``state``), the code exchange (form-encoded POST with the
client's credentials in the body or HTTP Basic; JSON or form answer as GitHub does), and
the APIs the authenticators call with ``Authorization: token|Bearer``:

- GitHub: ``/login/oauth/authorize``, ``/login/oauth/access_token``; API under
  ``/api/v3``: ``/user``, ``/user/emails``, ``/orgs/{org}/members/{user}`` and
  ``/orgs/{org}/teams/{team}/members/{user}`` (204 member, 404 not).
- Google: ``/o/oauth2/v2/auth``, ``/oauth2/v4/token``, ``/oauth2/v1/userinfo``
  (``verified_email``, ``hd``) and the OpenID ``/oauth2/v3/userinfo`` (``email_verified``).

Who is "signed in at the provider" is set by the test (:meth:`OAuthProvider.sign_in`),
standing in for the person on the consent screen.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


@dataclass
class Account:
    """A person at the provider."""

    login: str
    email: str = ""
    name: str = ""
    #: GitHub: organizations (``org``) and teams (``org:team``) the person belongs to.
    orgs: set[str] = field(default_factory=set)
    #: Google: the Workspace domain (``hd``); empty for a consumer account.
    hd: str = ""
    email_verified: bool = True
    id: int = field(default_factory=lambda: secrets.randbelow(10**8))


class OAuthProvider:
    """A GitHub- or Google-shaped OAuth2 server on a free 127.0.0.1 port."""

    def __init__(self, flavor: str, client_id: str, client_secret: str, redirect_uri: str = "") -> None:
        if flavor not in ("github", "google"):
            raise ValueError(flavor)
        self.flavor = flavor
        self.client_id = client_id
        self.client_secret = client_secret
        #: the registered callback; authorize and token requests must use exactly this
        self.redirect_uri = redirect_uri
        self.accounts: dict[str, Account] = {}
        self.signed_in: str | None = None
        self._codes: dict[str, tuple[str, str]] = {}
        self._tokens: dict[str, str] = {}
        #: (method, path, status) of every request, for assertions
        self.requests: list[tuple[str, str, int]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # -- test controls ------------------------------------------------------------------
    def add(self, account: Account) -> Account:
        self.accounts[account.login] = account
        return account

    def sign_in(self, login: str | None) -> None:
        """Who approves the next authorization request (None: nobody is signed in)."""
        self.signed_in = login

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def authorize_url(self) -> str:
        path = "/login/oauth/authorize" if self.flavor == "github" else "/o/oauth2/v2/auth"
        return self.url + path

    @property
    def github_api(self) -> str:
        return self.url + "/api/v3"

    # -- protocol -----------------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> tuple[int, dict, bytes]:
        if query.get("client_id") != self.client_id:
            return _page(400, "Unknown client_id")
        if self.redirect_uri and query.get("redirect_uri") != self.redirect_uri:
            return _page(400, "The redirect_uri MUST match the registered callback URL for this application.")
        if self.flavor == "google" and query.get("response_type") != "code":
            return _page(400, "Required parameter is missing: response_type")
        if not self.signed_in:
            return _page(401, "Sign in to continue")
        code = secrets.token_urlsafe(16)
        self._codes[code] = (self.signed_in, query.get("redirect_uri", ""))
        back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        sep = "&" if "?" in query["redirect_uri"] else "?"
        return 302, {"Location": query["redirect_uri"] + sep + urlencode(back)}, b""

    def _token(self, form: dict[str, str], headers) -> tuple[int, dict, bytes]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._token_error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                headers,
                401,
            )
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or (self.flavor == "google" and form.get("grant_type") != "authorization_code"):
            return self._token_error(
                "bad_verification_code", "The code passed is incorrect or expired.", headers, 400
            )
        login, redirect_uri = grant
        if form.get("redirect_uri") != redirect_uri:
            return self._token_error(
                "redirect_uri_mismatch", "The redirect_uri does not match.", headers, 400
            )
        token = secrets.token_hex(20)
        self._tokens[token] = login
        if self.flavor == "github":
            answer = {"access_token": token, "token_type": "bearer", "scope": "read:org"}
            if "application/json" not in headers.get("Accept", ""):
                return 200, {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(answer).encode()
        else:
            answer = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid https://www.googleapis.com/auth/userinfo.email",
            }
        return _json(200, answer)

    def _token_error(self, error: str, description: str, headers, google_status: int):
        body = {"error": error, "error_description": description}
        # GitHub answers token errors with 200 and an error body; Google with an HTTP error
        return _json(200 if self.flavor == "github" else google_status, body)

    def _account(self, headers) -> Account | None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or token not in self._tokens:
            return None
        return self.accounts.get(self._tokens[token])

    def _api(self, path: str, headers) -> tuple[int, dict, bytes]:
        account = self._account(headers)
        if account is None:
            if self.flavor == "github":
                return _json(401, {"message": "Bad credentials"})
            return _json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        if self.flavor == "github":
            parts = path.removeprefix("/api/v3").strip("/").split("/")
            if parts == ["user"]:
                return _json(
                    200, {"login": account.login, "id": account.id, "name": account.name, "email": None}
                )
            if parts == ["user", "emails"]:
                return _json(
                    200, [{"email": account.email, "primary": True, "verified": account.email_verified}]
                )
            if len(parts) == 4 and parts[0] == "orgs" and parts[2] == "members":
                return self._member(parts[1], parts[3])
            if len(parts) == 6 and parts[0] == "orgs" and parts[2] == "teams" and parts[4] == "members":
                return self._member(f"{parts[1]}:{parts[3]}", parts[5])
        elif path == "/oauth2/v1/userinfo":
            info = {
                "id": str(account.id),
                "email": account.email,
                "verified_email": account.email_verified,
                "name": account.name,
                "picture": "",
            }
            if account.hd:
                info["hd"] = account.hd
            return _json(200, info)
        elif path == "/oauth2/v3/userinfo":
            info = {"sub": str(account.id), "email": account.email, "email_verified": account.email_verified}
            if account.hd:
                info["hd"] = account.hd
            return _json(200, info)
        return _json(404, {"message": "Not Found"})

    def _member(self, org_team: str, username: str) -> tuple[int, dict, bytes]:
        person = self.accounts.get(username)
        if person is not None and org_team in person.orgs:
            return 204, {}, b""
        return _json(404, {"message": "Not Found"})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, headers: dict, body: bytes) -> None:
                provider.requests.append((self.command, urlparse(self.path).path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path in ("/login/oauth/authorize", "/o/oauth2/v2/auth"):
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    self._send(*provider._authorize(query))
                else:
                    self._send(*provider._api(url.path, self.headers))

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path in ("/login/oauth/access_token", "/oauth2/v4/token"):
                    self._send(*provider._token(form, self.headers))
                else:
                    self._send(*_json(404, {"message": "Not Found"}))

        return Handler


def _json(status: int, body) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


def _page(status: int, text: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "text/html"}, f"<html><body><p>{text}</p></body></html>".encode()
