"""The vidrag service in-process (``make_app``) against a real JupyterHub's API.

One hub for the module: users, groups and tokens are made through its REST API, and the
app checks every token with it. The authorization matrix walks every route of the app's
OpenAPI description for every kind of caller; a route without a row fails it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser

from tests.support.service import ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.slow]

GROUP = "cs-test"
USERS = {
    "alice": False,
    "bob": False,
    "carol": False,
    "dave": False,
    "erin": False,
    "frank": False,
    "ada": True,
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("service-hub")).start()
    for name in USERS:
        hub.user(name)
    hub.group("instructors", ["alice"])
    hub.group(GROUP, ["dave", "erin"])
    yield hub
    assert hub.stop() == []


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    return make_app(hub.settings(tmp_path_factory.mktemp("shared")))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(hub, app, client):
    """A token per caller; erin reaches a collection through the group, then is removed from it."""
    out = {name: hub.token(name) for name in USERS}
    out["noscope"] = hub.token("alice", ["users:activity!user"])
    out["anonymous"] = None
    world = make_world(app, None)
    assert call(client, out["erin"], "GET", f"collections/{world.id}").json()["role"] == "viewer"
    hub.ungroup(GROUP, ["erin"])
    # her token's identity is still cached, but her groups are read again: access is gone at once
    assert call(client, out["erin"], "GET", f"collections/{world.id}").status_code == 404
    assert call(client, out["dave"], "GET", f"collections/{world.id}").status_code == 200
    return out


API = "/services/vidrag/api"


def call(client, token, method, path, **kwargs):
    headers = {"Authorization": f"token {token}"} if token else {}
    return client.request(
        method, path if path.startswith("/") else f"{API}/{path}", headers=headers, **kwargs
    )


@pytest.fixture(scope="module")
def video(app, media_server):
    """A captioned lecture in a collection of alice's, ingested by the kernel library (no whisper)."""
    lib = app.state.service.library(HubUser("alice"))
    course = lib.collections.create(f"Lecture source {uuid.uuid4().hex[:6]}")
    results = lib.ingest(media_server.url("lecture.html"), course.id, captions="only")
    assert results[0].status == "done", results[0].error
    return results[0].video_id


@dataclass
class World:
    """A fresh shared collection of alice's: bob editor, carol viewer, the group viewer."""

    id: str
    link_token: str
    link_id: str
    invite_id: str
    video_id: str | None


def make_world(app, caller: str | None, video_id: str | None = None) -> World:
    from vidrag_hub import sharing

    service = app.state.service
    lib = service.library(HubUser("alice"))
    info = lib.collections.create(f"Course {uuid.uuid4().hex[:8]}")
    if video_id:
        lib.videos.add_to(info.id, video_id)
    from vidrag_kernel.catalog import Collection

    with service.catalog.session() as s:
        row = s.get(Collection, info.id)
        sharing.grant(s, row, "user", "bob", "editor", "alice")
        sharing.grant(s, row, "user", "carol", "viewer", "alice")
        sharing.grant(s, row, "group", GROUP, "viewer", "alice")
        link, token = sharing.create_link(s, row, "viewer", "alice")
        invitee = caller if caller in USERS and caller != "alice" else "frank"
        invite, _ = sharing.invite(s, row, "user", invitee, "viewer", "alice")
        return World(info.id, token, link.id, invite.id, video_id)


# role each caller holds on a world; None = no role
ROLES = {
    "alice": "owner",
    "bob": "editor",
    "carol": "viewer",
    "dave": "viewer",  # through the group
    "erin": None,  # removed from the group
    "frank": None,
    "ada": "owner",  # hub admin
}
RANK = {None: 0, "viewer": 1, "editor": 2, "owner": 3}

# route -> (who may, status when allowed, needs a video, body)
MATRIX = {
    ("get", "/services/vidrag/"): ("public", 200, False, None),
    ("get", "/services/vidrag/api/me"): ("user", 200, False, None),
    ("get", "/services/vidrag/api/collections"): ("user", 200, False, None),
    ("post", "/services/vidrag/api/collections"): (
        "creator",
        201,
        False,
        lambda w: {"name": f"New {uuid.uuid4()}"},
    ),
    ("get", "/services/vidrag/api/collections/{collection_id}"): ("viewer", 200, False, None),
    ("patch", "/services/vidrag/api/collections/{collection_id}"): (
        "editor",
        200,
        False,
        lambda w: {"description": "x"},
    ),
    ("delete", "/services/vidrag/api/collections/{collection_id}"): ("owner", 200, False, None),
    ("get", "/services/vidrag/api/collections/{collection_id}/members"): ("editor", 200, False, None),
    ("post", "/services/vidrag/api/collections/{collection_id}/members"): (
        "owner",
        201,
        False,
        lambda w: {"user": "frank", "role": "viewer"},
    ),
    ("patch", "/services/vidrag/api/collections/{collection_id}/members/{kind}/{name}"): (
        "owner",
        200,
        False,
        lambda w: {"role": "viewer"},
    ),
    ("delete", "/services/vidrag/api/collections/{collection_id}/members/{kind}/{name}"): (
        "owner",
        200,
        False,
        None,
    ),
    ("post", "/services/vidrag/api/collections/{collection_id}/transfer"): (
        "owner",
        200,
        False,
        lambda w: {"user": "frank"},
    ),
    ("post", "/services/vidrag/api/collections/{collection_id}/leave"): ("leave", 200, False, None),
    ("get", "/services/vidrag/api/collections/{collection_id}/invites"): ("editor", 200, False, None),
    ("post", "/services/vidrag/api/collections/{collection_id}/invites"): (
        "editor",
        201,
        False,
        lambda w: {"email": "student@example.edu"},
    ),
    ("delete", "/services/vidrag/api/collections/{collection_id}/invites/{invite_id}"): (
        "editor",
        200,
        False,
        None,
    ),
    ("get", "/services/vidrag/api/invites"): ("user", 200, False, None),
    ("post", "/services/vidrag/api/invites/{invite_id}/accept"): ("invitee", 200, False, None),
    ("post", "/services/vidrag/api/invites/{invite_id}/decline"): ("invitee", 200, False, None),
    ("get", "/services/vidrag/api/collections/{collection_id}/links"): ("editor", 200, False, None),
    ("post", "/services/vidrag/api/collections/{collection_id}/links"): (
        "editor",
        201,
        False,
        lambda w: {"max_uses": 3},
    ),
    ("delete", "/services/vidrag/api/collections/{collection_id}/links/{link_id}"): (
        "editor",
        200,
        False,
        None,
    ),
    ("post", "/services/vidrag/api/links/redeem"): ("user", 200, False, lambda w: {"token": w.link_token}),
    ("get", "/services/vidrag/api/collections/{collection_id}/videos"): ("viewer", 200, True, None),
    ("delete", "/services/vidrag/api/collections/{collection_id}/videos/{video_id}"): (
        "editor",
        200,
        True,
        None,
    ),
    ("get", "/services/vidrag/api/collections/{collection_id}/videos/{video_id}/transcript"): (
        "viewer",
        200,
        True,
        None,
    ),
    ("post", "/services/vidrag/api/collections/{collection_id}/search"): (
        "viewer",
        200,
        True,
        lambda w: {"query": "topics"},
    ),
    ("post", "/services/vidrag/api/collections/{collection_id}/ask"): (
        "viewer",
        200,
        True,
        lambda w: {"question": "What are the topics?"},
    ),
    # no ingest runner in this slice: an allowed caller gets 503, the others their refusal
    ("post", "/services/vidrag/api/collections/{collection_id}/ingest"): (
        "editor",
        503,
        False,
        lambda w: {"sources": ["http://127.0.0.1:9/lecture.mp4"]},
    ),
    ("post", "/services/vidrag/api/collections/{collection_id}/upload"): ("editor", 503, False, "upload"),
}
CALLERS = [*ROLES, "anonymous", "noscope"]


def expected(level: str, caller: str, allowed: int) -> int:
    if level == "public":
        return allowed
    if caller == "anonymous":
        return 401
    if caller == "noscope":
        return 403
    if level == "invitee":
        # each world invites the caller, except alice's (she owns it): hers goes to frank
        return 404 if caller == "alice" else allowed
    if level == "user":
        return allowed
    if level == "creator":
        return allowed if caller in ("alice", "ada") else 403
    role = ROLES[caller]
    if role is None:
        return 404
    if level == "leave":
        # the owner must transfer first, a group's member cannot drop the group's grant,
        # an admin holds no grant to leave
        return {"alice": 409, "dave": 409, "ada": 404}.get(caller, allowed)
    return allowed if RANK[role] >= RANK[level] else 403


def test_the_matrix_covers_every_route(app):
    routes = {(m, p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert routes == set(MATRIX), "routes without a matrix row (or rows without a route)"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0].upper()} {r[1].split('vidrag')[1]}")
def test_authorization_matrix(app, client, tokens, video, route):
    method, template = route
    level, allowed, needs_video, body = MATRIX[route]
    seen = {}
    for caller in CALLERS:
        world = make_world(app, caller, video if needs_video else None)
        path = template.format(
            collection_id=world.id,
            kind="user",
            name="carol",
            invite_id=world.invite_id,
            link_id=world.link_id,
            video_id=video,
        )
        kwargs = {}
        if body == "upload":
            kwargs = {"params": {"filename": "talk.mp4"}, "content": b"\x00" * 64}
        elif body is not None:
            kwargs = {"json": body(world)}
        reply = call(client, tokens[caller], method.upper(), path, **kwargs)
        seen[caller] = reply.status_code
        if reply.status_code >= 400:
            problem = reply.json()
            assert set(problem) == {"error", "status", "message"} and problem["status"] == reply.status_code
            assert "Traceback" not in reply.text
        for token in tokens.values():
            assert not token or token not in reply.text
    want = {caller: expected(level, caller, allowed) for caller in CALLERS}
    assert seen == want


# ------------------------------------------------------------------------------ sharing
def test_invites_by_name_group_and_email(app, client, tokens):
    world = make_world(app, None)
    t = tokens
    by_name = call(
        client, t["alice"], "POST", f"collections/{world.id}/invites", json={"user": "frank"}
    ).json()
    mine = call(client, t["frank"], "GET", "invites").json()
    assert by_name["id"] in [i["id"] for i in mine]
    assert call(client, t["frank"], "POST", f"invites/{by_name['id']}/decline").status_code == 200
    assert call(client, t["frank"], "GET", f"collections/{world.id}").status_code == 404
    assert call(client, t["frank"], "POST", f"invites/{by_name['id']}/accept").status_code == 409
    # a group invite: each member answers for themselves
    group = call(
        client, t["bob"], "POST", f"collections/{world.id}/invites", json={"group": GROUP, "role": "editor"}
    )
    assert group.status_code == 201
    assert call(client, t["dave"], "POST", f"invites/{group.json()['id']}/accept").json()["role"] == "editor"
    assert call(client, t["dave"], "GET", f"collections/{world.id}").json()["role"] == "editor"
    assert call(client, t["frank"], "POST", f"invites/{group.json()['id']}/accept").status_code == 404
    # an e-mail invite is answered with its token, by whoever logs in with it
    email = call(
        client, t["alice"], "POST", f"collections/{world.id}/invites", json={"email": "Fr@Example.edu"}
    ).json()
    assert email["target"] == "fr@example.edu" and email["token"]
    wrong = call(client, t["frank"], "POST", f"invites/{email['id']}/accept", json={"token": "nope"})
    assert wrong.status_code == 404
    ok = call(client, t["frank"], "POST", f"invites/{email['id']}/accept", json={"token": email["token"]})
    assert ok.status_code == 200 and ok.json()["role"] == "viewer"
    listed = call(client, t["alice"], "GET", f"collections/{world.id}/invites").json()
    assert email["token"] not in str(listed)


def test_links_revoked_wrong_token_and_use_limit(app, client, tokens):
    t = tokens
    world = make_world(app, None)
    made = call(
        client, t["bob"], "POST", f"collections/{world.id}/links", json={"max_uses": 1, "note": "TA"}
    ).json()
    assert made["state"] == "active" and made["expires_at"]
    assert call(client, t["frank"], "POST", "links/redeem", json={"token": "x" * 43}).status_code == 404
    assert call(client, t["frank"], "POST", "links/redeem", json={"token": made["token"]}).status_code == 200
    used = call(client, t["erin"], "POST", "links/redeem", json={"token": made["token"]})
    assert used.status_code == 410 and "used" in used.json()["message"]
    links = {
        link["id"]: link for link in call(client, t["alice"], "GET", f"collections/{world.id}/links").json()
    }
    assert links[made["id"]]["uses"] == 1 and "token" not in links[made["id"]]
    other = call(client, t["alice"], "POST", f"collections/{world.id}/links", json={}).json()
    assert (
        call(client, t["alice"], "DELETE", f"collections/{world.id}/links/{other['id']}").status_code == 200
    )
    revoked = call(client, t["erin"], "POST", "links/redeem", json={"token": other["token"]})
    assert revoked.status_code == 410 and "revoked" in revoked.json()["message"]
    too_long = call(
        client, t["alice"], "POST", f"collections/{world.id}/links", json={"expires_in_days": 1000}
    )
    assert too_long.status_code == 400


def test_transfer_and_leave(app, client, tokens):
    t = tokens
    world = make_world(app, None)
    assert (
        call(
            client, t["alice"], "POST", f"collections/{world.id}/transfer", json={"user": "nobody-here"}
        ).status_code
        == 404
    )
    moved = call(client, t["alice"], "POST", f"collections/{world.id}/transfer", json={"user": "bob"})
    assert moved.json()["owner"] == "bob"
    assert call(client, t["alice"], "GET", f"collections/{world.id}").json()["role"] == "editor"
    assert call(client, t["alice"], "DELETE", f"collections/{world.id}").status_code == 403
    assert call(client, t["carol"], "POST", f"collections/{world.id}/leave").status_code == 200
    assert call(client, t["carol"], "GET", f"collections/{world.id}").status_code == 404
    assert call(client, t["bob"], "POST", f"collections/{world.id}/leave").status_code == 409


def test_ingest_refuses_paths_whoever_sends_them(app, client, tokens):
    world = make_world(app, None)
    for source in ["/etc/passwd", "file:///etc/passwd", "~/lecture.mp4", "lecture.mp4"]:
        reply = call(
            client, tokens["ada"], "POST", f"collections/{world.id}/ingest", json={"sources": [source]}
        )
        assert reply.status_code == 403, (source, reply.text)
    no_runner = call(
        client,
        tokens["alice"],
        "POST",
        f"collections/{world.id}/ingest",
        json={"sources": ["https://example.edu/v"]},
    )
    assert no_runner.status_code == 503 and "ingest" in no_runner.json()["message"].lower()
