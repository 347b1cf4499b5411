"""The service's browser side in-process: JupyterHub OAuth login (state, PKCE, signed
cookie), XSRF on forms, the share-link join page and the media route with HTTP Range.

A real JupyterHub (its login form, its OAuth provider, its token checks); the service app
built by ``make_app`` and served by uvicorn where the hub's proxy forwards the service's
prefix, so a browser (an httpx client with its cookie jar) sees one origin, as in a course.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update
from vidrag_hub import sharing
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser
from vidrag_hub.models import ShareLink

from tests.support.hub import login_form
from tests.support.service import PASSWORD, Served, ServiceHub
from vidrag_kernel.catalog import Collection, Video

pytestmark = [pytest.mark.hub, pytest.mark.slow]

PREFIX = "/services/vidrag/"
COOKIE = "service-vidrag"
CHAT = "/hub/user-redirect/voila/render/vidrag/workbench.ipynb"
USERS = ("ada", "sam", "kim", "lee", "max")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("web-hub"))
    hub.hub.env["VIDRAG_DEMO_USERS"] = ",".join(USERS)
    # as hub_config registers the real service: part of the hub, no consent page
    hub.hub.extra_config += "\nc.JupyterHub.services[0]['oauth_no_confirm'] = True"
    hub.hub.start(timeout=180)  # a loaded 2-core CI machine can take over a minute
    for name in USERS:
        hub.user(name)
    hub.group("instructors", ["ada"])
    yield hub
    assert hub.stop() == []


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VIDRAG_COOKIE_SECRET", "ab" * 32)
        env.setenv("VIDRAG_CHAT_URL", CHAT)
        app = make_app(hub.settings(tmp_path_factory.mktemp("web-shared")))
    with Served(app, hub.service_port):
        yield app


class Browser:
    """One person's browser on the hub's address (the service is behind the hub's proxy)."""

    def __init__(self, hub: ServiceHub, user: str) -> None:
        self.user = user
        self.http = httpx.Client(base_url=hub.hub.url, timeout=30, follow_redirects=False)
        self.logged_in_hub = False

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def hub_login(self) -> None:
        reply = login_form(self.http, str(self.http.base_url).rstrip("/"), self.user, PASSWORD)
        assert reply.status_code == 302, reply.text[-500:]
        self.logged_in_hub = True

    def open(self, path: str, *, max_hops: int = 8, **kwargs) -> httpx.Response:
        """GET ``path``, following redirects as a browser does, until a page answers (or the
        hub asks a browser that has not logged in to do so)."""
        url = path
        for _ in range(max_hops):
            reply = self.http.get(url, **kwargs)
            if reply.status_code not in (301, 302, 303, 307):
                return reply
            url = reply.headers["location"]
            if urlsplit(url).path.startswith("/hub/login") and not self.logged_in_hub:
                return reply
        raise AssertionError(f"too many redirects, last at {url}")


@pytest.fixture
def browser(hub, app):
    opened: list[Browser] = []

    def make(user: str, *, login: bool = True) -> Browser:
        b = Browser(hub, user)
        if login:
            b.hub_login()
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.http.close()


def course(app, *, owner: str = "ada", role: str = "viewer", **link) -> tuple[str, str, str]:
    """A new shared collection of ``owner``'s and a share link to it: (collection id, token, link id)."""
    service = app.state.service
    info = service.library(HubUser(owner, admin=True)).collections.create(
        f"Algorithms {uuid.uuid4().hex[:6]}"
    )
    with service.catalog.session() as s:
        row, token = sharing.create_link(s, s.get(Collection, info.id), role, owner, note="week 1", **link)
        return info.id, token, row.id


def xsrf(page: httpx.Response) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def role_of(app, user: str, collection_id: str) -> str | None:
    from vidrag_hub.access import RoleAccess

    service = app.state.service
    with service.catalog.session() as s:
        return RoleAccess(HubUser(user)).role(s, s.get(Collection, collection_id))


# ------------------------------------------------------------------------------- login
def test_the_join_page_logs_in_through_the_hub_and_accepting_opens_the_chat(app, browser):
    cid, token, _ = course(app, role="editor")
    sam = browser("sam", login=False)

    # not logged in anywhere: the link leads to the service's login, then the hub's login page
    first = sam.get(f"{PREFIX}join/{token}")
    assert first.status_code == 302 and first.headers["location"].startswith(f"{PREFIX}login?next=")
    start = sam.get(first.headers["location"])
    authorize = urlsplit(start.headers["location"])
    assert authorize.path == "/hub/api/oauth2/authorize"
    query = parse_qs(authorize.query)
    assert query["client_id"] == ["service-vidrag"] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{PREFIX}oauth_callback"] and query["state"][0]
    state_cookie = [c for c in start.headers.get_list("set-cookie") if "oauth-state" in c][0]
    assert "HttpOnly" in state_cookie and f"Path={PREFIX}" in state_cookie
    assert sam.open(f"{PREFIX}join/{token}").headers["location"].startswith("/hub/login")

    # after the hub's login the same link shows what it offers
    sam.hub_login()
    page = sam.open(f"{PREFIX}join/{token}")
    assert page.status_code == 200, page.text
    assert (
        "ada" in page.text and "Algorithms" in page.text and "editor" in page.text and "week 1" in page.text
    )
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    session = sam.cookie()
    assert session and "token" not in page.text.lower().replace("_xsrf", "")
    assert role_of(app, "sam", cid) is None  # looking is not joining

    # the form needs this session's XSRF token
    missing = sam.post(f"{PREFIX}join/{token}", data={})
    assert missing.status_code == 403 and "reload it" in missing.text
    forged = sam.post(f"{PREFIX}join/{token}", data={"_xsrf": "0" * 64})
    assert forged.status_code == 403 and role_of(app, "sam", cid) is None
    accepted = sam.post(f"{PREFIX}join/{token}", data={"_xsrf": xsrf(page)})
    assert accepted.status_code == 303
    assert (
        accepted.headers["location"]
        == f"/hub/user-redirect/voila/render/vidrag/workbench.ipynb?collection={cid}"
    )
    assert role_of(app, "sam", cid) == "editor"

    # another user's session cannot carry sam's XSRF token
    kim = browser("kim")
    kim.open(f"{PREFIX}join/{token}")
    stolen = kim.post(f"{PREFIX}join/{token}", data={"_xsrf": xsrf(page)})
    assert stolen.status_code == 403 and role_of(app, "kim", cid) is None


def test_a_login_finishes_only_in_the_browser_that_started_it_and_only_once(app, browser):
    _, token, _ = course(app)
    lee = browser("lee")
    start = lee.get(f"{PREFIX}login", params={"next": f"{PREFIX}join/{token}"})
    callback = lee.get(start.headers["location"])
    assert (
        callback.status_code == 302
        and urlsplit(callback.headers["location"]).path == f"{PREFIX}oauth_callback"
    )

    # someone else's browser (no state cookie) cannot finish lee's login
    other = browser("sam", login=False)
    stranger = other.get(callback.headers["location"])
    assert stranger.status_code == 400 and "another browser" in stranger.text
    assert not other.cookie()

    done = lee.get(callback.headers["location"])
    assert done.status_code == 302 and done.headers["location"] == f"{PREFIX}join/{token}"
    session = [c for c in done.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")][0]
    assert "HttpOnly" in session and "samesite=lax" in session.lower() and f"Path={PREFIX}" in session
    again = lee.get(callback.headers["location"])  # the state was used up
    assert again.status_code == 400 and "expired" in again.text

    # a next URL off the service is not followed (no open redirect)
    off = lee.get(f"{PREFIX}login", params={"next": "https://evil.example/"})
    back = lee.get(lee.get(off.headers["location"]).headers["location"])
    assert back.headers["location"] == PREFIX


def test_a_forged_or_revoked_session_cookie_is_no_login(app, hub, browser):
    _, token, _ = course(app)
    max_ = browser("max")
    assert max_.open(f"{PREFIX}join/{token}").status_code == 200
    good = max_.cookie()

    good = good.strip('"')
    forged = browser("max", login=False)
    bad = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    join = f"{PREFIX}join/{token}"
    assert forged.get(join, headers={"Cookie": f"{COOKIE}={bad}"}).status_code == 302  # to the login
    # a token that is not signed by the service's secret is refused the same way
    assert forged.get(join, headers={"Cookie": f"{COOKIE}={hub.token('max')}"}).status_code == 302
    assert forged.get(join, headers={"Cookie": f"{COOKIE}={good}"}).status_code == 200  # the real one

    # logging out forgets the session
    out = max_.get(f"{PREFIX}logout")
    assert out.status_code == 200 and not max_.cookie()
    assert max_.get(f"{PREFIX}join/{token}").status_code == 302


# ------------------------------------------------------------------------ link states
def test_revoked_expired_used_up_and_wrong_links_get_plain_pages(app, browser):
    service = app.state.service
    kim = browser("kim")
    cid, token, link_id = course(app, max_uses=1)

    wrong = kim.open(f"{PREFIX}join/{'x' * 43}")
    assert wrong.status_code == 404 and "not valid" in wrong.text and "Traceback" not in wrong.text

    page = kim.open(f"{PREFIX}join/{token}")
    assert kim.post(f"{PREFIX}join/{token}", data={"_xsrf": xsrf(page)}).status_code == 303
    used = kim.open(f"{PREFIX}join/{token}")
    assert used.status_code == 410 and "used as many times" in used.text

    cid2, token2, link2 = course(app)
    page = kim.open(f"{PREFIX}join/{token2}")
    with service.catalog.session() as s:
        sharing.revoke_link(s, s.get(Collection, cid2), link2)
    # the page was open before the revocation: accepting now is refused as well
    late = kim.post(f"{PREFIX}join/{token2}", data={"_xsrf": xsrf(page)})
    assert late.status_code == 410 and "revoked" in late.text
    assert kim.open(f"{PREFIX}join/{token2}").status_code == 410
    assert role_of(app, "kim", cid2) is None

    _, token3, link3 = course(app)
    with service.catalog.session() as s:
        past = datetime.now(UTC) - timedelta(minutes=1)
        s.execute(update(ShareLink).where(ShareLink.id == link3).values(expires_at=past))
    expired = kim.open(f"{PREFIX}join/{token3}")
    assert expired.status_code == 410 and "expired" in expired.text
    for reply in (wrong, used, expired):
        assert "<main>" in reply.text and 'lang="en"' in reply.text


def test_an_email_invite_link_is_accepted_from_its_page(app, browser):
    service = app.state.service
    info = service.library(HubUser("ada")).collections.create(f"Seminar {uuid.uuid4().hex[:6]}")
    with service.catalog.session() as s:
        invite, token = sharing.invite(
            s, s.get(Collection, info.id), "email", "lee@example.edu", "viewer", "ada"
        )
        invite_id = invite.id
    lee = browser("lee")
    assert lee.open(f"{PREFIX}join/invite/{invite_id}?token=wrong").status_code == 404
    page = lee.open(f"{PREFIX}join/invite/{invite_id}?token={token}")
    assert page.status_code == 200 and "Seminar" in page.text and "Decline" in page.text
    done = lee.post(
        f"{PREFIX}join/invite/{invite_id}",
        params={"token": token},
        data={"_xsrf": xsrf(page), "answer": "accept"},
    )
    assert done.status_code == 303 and done.headers["location"].endswith(f"collection={info.id}")
    assert role_of(app, "lee", info.id) == "viewer"


# ------------------------------------------------------------------------------- media
@pytest.fixture(scope="module")
def shared_video(app, media_server, media_root):
    """A captioned lecture in a shared collection of ada's, with the media file ingest keeps."""
    lib = app.state.service.library(HubUser("ada"))
    info = lib.collections.create(f"Media course {uuid.uuid4().hex[:6]}")
    [result] = lib.ingest(media_server.url("lecture.html"), info.id, captions="only")
    assert result.status == "done", result.error
    # a captions-only ingest downloads no audio; put the file where an ASR ingest leaves it
    folder = lib.ctx.layout.media_dir(result.video_id)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(media_root / "lecture.m4a", folder / "audio.m4a")
    with app.state.service.catalog.session() as s:
        sharing.grant(s, s.get(Collection, info.id), "user", "sam", "viewer", "ada")
        # as for a page whose media yt-dlp fetched but names no direct URL a browser could
        # play: the player's one source is then the service's copy
        s.execute(update(Video).where(Video.id == result.video_id).values(media_url=None))
    return info.id, result.video_id, (folder / "audio.m4a").read_bytes()


def test_media_is_streamed_with_ranges_to_viewers_only(app, hub, shared_video):
    cid, vid, data = shared_video
    url = f"{PREFIX}api/collections/{cid}/videos/{vid}/media"
    http = httpx.Client(base_url=hub.hub.url, timeout=30, follow_redirects=False)
    sam = {"Authorization": f"token {hub.token('sam')}"}

    whole = http.get(url, headers=sam)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/mp4"
    assert "private" in whole.headers["cache-control"]
    part = http.get(url, headers={**sam, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = http.get(url, headers={**sam, "Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert http.get(url, headers={**sam, "Range": f"bytes={len(data) + 10}-"}).status_code == 416

    # a viewer of another collection, and a stranger, learn nothing about it
    other_cid, _, _ = course(app)
    with app.state.service.catalog.session() as s:
        sharing.grant(s, s.get(Collection, other_cid), "user", "kim", "viewer", "ada")
    kim = {"Authorization": f"token {hub.token('kim')}"}
    assert http.get(url, headers=kim).status_code == 404
    assert http.get(f"{PREFIX}api/collections/{other_cid}/videos/{vid}/media", headers=kim).status_code == 404
    assert http.get(url).status_code == 401  # a client without credentials
    http.close()


def test_a_browser_plays_media_with_its_session_and_logs_in_first_when_needed(app, browser, shared_video):
    cid, vid, data = shared_video
    url = f"{PREFIX}api/collections/{cid}/videos/{vid}/media"
    sam = browser("sam")
    as_video = {"Sec-Fetch-Dest": "video", "Range": "bytes=0-99"}
    # a <video> of a browser not logged in to the service goes through the hub's login and back
    first = sam.get(url, headers=as_video)
    assert first.status_code == 302 and first.headers["location"].startswith(f"{PREFIX}login?next=")
    assert (
        sam.open(url, headers={"Sec-Fetch-Dest": "video"}).status_code == 200
    )  # the redirects end at the file
    played = sam.get(url, headers=as_video)
    assert played.status_code == 206 and played.content == data[:100]
    # the session cookie does not open the rest of the API (those calls need a token)
    assert sam.get(f"{PREFIX}api/collections").status_code == 401


def test_the_dashboards_play_a_shared_video_from_the_service_and_open_a_joined_collection(
    hub, browser, shared_video, tmp_path, monkeypatch
):
    from vidrag_dashboards.app import WorkbenchApp
    from vidrag_dashboards.media import playable

    from tests.support.settings import make_settings
    from vidrag_kernel import Workbench
    from vidrag_kernel.shared import ServiceLibrary

    cid, vid, data = shared_video
    # sam's server reaches the service at its own address; the page plays it through the hub
    shared = ServiceLibrary(f"{hub.hub.url}{PREFIX}api/", hub.token("sam"))
    wb = Workbench(make_settings(tmp_path / "sam", user="sam"), libraries=[shared])
    where = playable(wb, wb.videos.get(vid))
    assert (where.kind, where.src) == ("video", f"{PREFIX}api/collections/{cid}/videos/{vid}/media")
    sam = browser("sam")
    assert sam.open(where.src, headers={"Sec-Fetch-Dest": "video"}).content == data

    # the join page's redirect names the collection: the workbench opens on it
    monkeypatch.setenv("QUERY_STRING", f"collection={cid}")
    app = WorkbenchApp(wb)
    assert app.state.collection == cid and app.chat.scope.value == cid
    wb.close()


# ------------------------------------------------------------------------ settings alone
def test_browser_settings_come_from_the_hubs_variables_and_a_missing_secret_is_generated(caplog):
    from vidrag_hub.oauth import BrowserLogin, BrowserSettings
    from vidrag_hub.settings import ServiceSettings

    settings = ServiceSettings(service_name="vidrag", hub_api_token="service-token")
    with caplog.at_level("WARNING", logger="vidrag_hub"):
        made = BrowserSettings.from_env(settings, {})
    assert len(made.cookie_secret) == 32 and "VIDRAG_COOKIE_SECRET is not set" in caplog.text
    assert made.client_id == "service-vidrag" and made.chat_url == CHAT
    assert BrowserSettings.from_env(settings, {}).cookie_secret != made.cookie_secret

    env = {
        "VIDRAG_COOKIE_SECRET": "ab" * 32,
        "JUPYTERHUB_CLIENT_ID": "service-course",
        "JUPYTERHUB_BASE_URL": "/jh/",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/jh/services/course/oauth_callback",
    }
    read = BrowserSettings.from_env(settings, env)
    assert read.cookie_secret == bytes.fromhex("ab" * 32) and read.client_id == "service-course"
    assert read.chat_url == "/jh" + CHAT
    assert BrowserSettings.from_env(settings, {"VIDRAG_COOKIE_SECRET": "not hex at all"}).cookie_secret == (
        b"not hex at all"
    )
    login = BrowserLogin(settings, read)
    assert login.oauth.oauth_authorization_url == "/jh/hub/api/oauth2/authorize"
    assert login.oauth.oauth_redirect_uri == "/jh/services/course/oauth_callback"
    for outside in (
        "https://evil.example/x",
        "//evil.example/",
        "/hub/admin",
        "/services/vidrag/\\\\evil.example",
        "",
    ):
        assert login.safe_next(outside) == PREFIX, outside
    assert login.safe_next(f"{PREFIX}join/abc?x=1") == f"{PREFIX}join/abc?x=1"
