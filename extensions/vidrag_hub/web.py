"""The service's browser pages: login through the hub, the share-link join page, logout.

- ``GET login?next=PATH``: start a JupyterHub OAuth login (state, PKCE), back to ``PATH``.
- ``GET oauth_callback``: the hub sends the browser back here; the session cookie is set.
- ``GET join/{token}``: what a share link offers (collection, owner, role) and an Accept
  form; not logged in, the browser goes through the hub's login first and comes back.
  ``POST join/{token}`` (the form, with its XSRF token) redeems the link and sends the
  user to their chat dashboard with the collection selected. A revoked, expired or
  used-up link gets a page saying which (410), a wrong token 404.
- ``GET join/invite/{invite_id}?token=...``: the same for an e-mail invite's link
  (Accept or Decline).
- ``GET logout``: forget the browser session.

Pages are plain server-rendered HTML (every value escaped), one ``<main>`` with an
``<h1>``, readable without scripts. They are not part of the JSON API, so they stay out
of the OpenAPI description; errors are pages too, never JSON or a traceback.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from vidrag_kernel.catalog import Collection
from vidrag_kernel.errors import NotFound, VidragError

from . import sharing
from .access import RoleAccess
from .models import Invite
from .oauth import BrowserLogin, BrowserSettings

log = logging.getLogger("vidrag_hub")

ROLE_WORDS = {
    "viewer": "viewer: search the lectures, ask questions and read transcripts",
    "editor": "editor: also add and remove videos and edit the collection's details",
}
MAX_FORM_BYTES = 16 * 1024

STYLE = """
body { font-family: system-ui, sans-serif; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.6rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
button { font: inherit; padding: .5rem 1.25rem; border-radius: .3rem; border: 1px solid #0b5394;
         background: #0b5394; color: #fff; cursor: pointer; margin-right: .5rem; }
button.secondary { background: #fff; color: #0b5394; }
button:focus-visible, a:focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
a { color: #0b5394; }
.note { color: #3d444d; }
"""


def browser_login(service) -> BrowserLogin:
    """The service's one ``BrowserLogin`` (built on first use, shared by every route module)."""
    login = getattr(service, "browser_login", None)
    if login is None:
        login = BrowserLogin(service.settings, BrowserSettings.from_env(service.settings))
        service.browser_login = login
    return login


def esc(value) -> str:
    return html.escape(str(value if value is not None else ""), quote=True)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A whole page: ``title`` as its title and ``<h1>``, ``body`` (HTML) below it."""
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · vidrag</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    # the join page holds the session's XSRF token: no caching, no framing by other sites
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'; form-action 'self'",
        "Referrer-Policy": "no-referrer",  # the page's URL holds the link's token
    }
    return HTMLResponse(text, status_code=status, headers=headers)


def error_page(exc: VidragError) -> HTMLResponse:
    """The page for a refusal: its own words, and where to go from here."""
    titles = {
        400: "This did not work",
        401: "Please log in",
        403: "Not allowed",
        404: "Link not found",
        410: "This link can no longer be used",
        429: "Too many attempts",
        502: "JupyterHub did not answer",
    }
    title = titles.get(exc.status, "Something went wrong")
    return page(title, f"<p>{esc(exc.message)}</p>", exc.status)


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of an urlencoded browser form (the first value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items() if v}


def chat_url(login: BrowserLogin, collection_id: str) -> str:
    """The user's chat dashboard with ``collection_id`` selected."""
    url = login.browser.chat_url
    return url + ("&" if "?" in url else "?") + urlencode({"collection": collection_id})


def router(service) -> APIRouter:
    """The browser routes of ``service`` (see the module docstring)."""
    r = APIRouter(include_in_schema=False)
    prefix = service.settings.prefix
    login = browser_login(service)

    async def signed_in(request: Request):
        return await login.user(request, service.identity)

    def to_login(request: Request, status: int = 302) -> RedirectResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(login.login_url(here), status_code=status)

    def xsrf_field(request: Request) -> str:
        return f'<input type="hidden" name="_xsrf" value="{esc(login.xsrf_token(request))}">'

    # ------------------------------------------------------------------------- login
    @r.get(prefix + "login")
    async def start_login(request: Request, next: str = "") -> RedirectResponse:
        return login.start(request, next or prefix, RedirectResponse)

    @r.get(prefix + "oauth_callback")
    async def oauth_callback(
        request: Request, code: str | None = None, state: str | None = None, error: str | None = None
    ):
        if error:
            # the hub's error code (e.g. access_denied), a fixed word, never a token
            return page("Login refused", f"<p>JupyterHub did not log you in ({esc(error[:80])}).</p>", 403)
        try:
            token, next_url, state_cookie = await login.finish(request, code, state)
            user = await service.identity.user(token)  # the hub's gate: access to this service
        except VidragError as exc:
            return error_page(exc)
        log.info("browser login: %s", user.name)
        response = RedirectResponse(login.safe_next(next_url), status_code=302)
        login.set_session(response, request, token, state_cookie)
        return response

    @r.get(prefix + "logout")
    async def logout(request: Request) -> HTMLResponse:
        response = page(
            "Logged out of vidrag",
            "<p>This browser is no longer logged in to the vidrag service.</p>"
            f'<p><a href="{esc(login.browser.hub_base_url)}hub/logout">Log out of JupyterHub too</a></p>',
        )
        login.log_out(response, request)
        return response

    # -------------------------------------------------------------------- share links
    def preview(user, token: str) -> dict:
        with service.catalog.session() as s:
            link, collection = sharing.preview(s, token)
            return {
                "collection": collection.name,
                "description": collection.description or "",
                "owner": collection.owner,
                "role": link.role,
                "note": link.note or "",
                "expires_at": sharing.aware(link.expires_at),
                "current": RoleAccess(user).role(s, collection),
            }

    def redeem(user, token: str) -> dict:
        service.count_redeem(user.name)
        with service.catalog.session() as s:
            return sharing.redeem(s, user, token)

    @r.get(prefix + "join/{token}")
    async def join_page(request: Request, token: str):
        try:
            user = await signed_in(request)
            if user is None:
                return to_login(request)
            await run_in_threadpool(service.count_redeem, user.name)
            offer = await run_in_threadpool(preview, user, token)
        except VidragError as exc:
            return error_page(exc)
        details = (
            f"<dl><dt>Collection</dt><dd>{esc(offer['collection'])}</dd>"
            f"<dt>Shared by</dt><dd>{esc(offer['owner'])}</dd>"
            f"<dt>Your role</dt><dd>{esc(ROLE_WORDS.get(offer['role'], offer['role']))}</dd>"
            + (f"<dt>Note</dt><dd>{esc(offer['note'])}</dd>" if offer["note"] else "")
            + f"<dt>Link expires</dt><dd>{esc(offer['expires_at'].strftime('%d %B %Y, %H:%M UTC'))}</dd></dl>"
        )
        if offer["description"]:
            details = f"<p>{esc(offer['description'])}</p>" + details
        already = ""
        if offer["current"]:
            already = (
                f'<p class="note">You already have access to this collection as {esc(offer["current"])}; '
                "accepting never lowers it.</p>"
            )
        body = (
            f"<p>{esc(user.name)}, {esc(offer['owner'])} shares a collection of lecture videos with you.</p>"
            f"{details}{already}"
            f'<form method="post" action="{esc(request.url.path)}">{xsrf_field(request)}'
            '<button type="submit">Accept and open the chat</button></form>'
        )
        return page(f"Join “{offer['collection']}”", body)

    @r.post(prefix + "join/{token}")
    async def join(request: Request, token: str):
        try:
            user = await signed_in(request)
            if user is None:
                return to_login(request, 303)
            login.check_xsrf(request, (await form_fields(request)).get("_xsrf"))
            joined = await run_in_threadpool(redeem, user, token)
        except VidragError as exc:
            return error_page(exc)
        log.info(
            "share link redeemed: %s joined collection %s as %s",
            user.name,
            joined["collection_id"],
            joined["role"],
        )
        return RedirectResponse(chat_url(login, joined["collection_id"]), status_code=303)

    # ---------------------------------------------------------------- e-mail invites
    def invite_offer(user, invite_id: str, token: str) -> dict:
        with service.catalog.session() as s:
            invite = s.scalar(select(Invite).where(Invite.id == invite_id, Invite.kind == "email"))
            if invite is None or not token or invite.token_hash != sharing.hash_token(token):
                raise NotFound("This invite link is not valid: check that it was copied whole")
            if invite.revoked_at is not None:
                raise sharing.LinkUnusable("This invite was withdrawn by the person who sent it")
            collection = s.get(Collection, invite.collection_id)
            if collection is None:
                raise NotFound("The collection of this invite no longer exists")
            return {"collection": collection.name, "owner": collection.owner, "role": invite.role}

    def answer(user, invite_id: str, token: str, accept: bool) -> dict:
        service.count_redeem(user.name)
        with service.catalog.session() as s:
            return sharing.answer(s, user, invite_id, accept, token)

    @r.get(prefix + "join/invite/{invite_id}")
    async def invite_page(request: Request, invite_id: str, token: str = ""):
        try:
            user = await signed_in(request)
            if user is None:
                return to_login(request)
            await run_in_threadpool(service.count_redeem, user.name)
            offer = await run_in_threadpool(invite_offer, user, invite_id, token)
        except VidragError as exc:
            return error_page(exc)
        action = esc(f"{request.url.path}?{urlencode({'token': token})}")
        body = (
            f"<p>{esc(offer['owner'])} invites you to a collection of lecture videos.</p>"
            f"<dl><dt>Collection</dt><dd>{esc(offer['collection'])}</dd>"
            f"<dt>Shared by</dt><dd>{esc(offer['owner'])}</dd>"
            f"<dt>Your role</dt><dd>{esc(ROLE_WORDS.get(offer['role'], offer['role']))}</dd></dl>"
            f'<form method="post" action="{action}">{xsrf_field(request)}'
            '<button type="submit" name="answer" value="accept">Accept and open the chat</button>'
            '<button type="submit" name="answer" value="decline" class="secondary">Decline</button></form>'
        )
        return page(f"Invitation to “{offer['collection']}”", body)

    @r.post(prefix + "join/invite/{invite_id}")
    async def answer_invite(request: Request, invite_id: str, token: str = ""):
        try:
            user = await signed_in(request)
            if user is None:
                return to_login(request, 303)
            fields = await form_fields(request)
            login.check_xsrf(request, fields.get("_xsrf"))
            accept = fields.get("answer") != "decline"
            result = await run_in_threadpool(answer, user, invite_id, token, accept)
        except VidragError as exc:
            return error_page(exc)
        if not accept:
            return page(
                "Invitation declined", f"<p>You declined the invitation to {esc(result['collection'])}.</p>"
            )
        return RedirectResponse(chat_url(login, result["collection_id"]), status_code=303)

    return r
