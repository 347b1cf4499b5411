"""The vidrag service in-process (``make_app``) against a real JupyterHub's API.

One hub for the module: users, groups and tokens are made through its REST API, and the
app checks every token with it. The authorization matrix walks every route of the app's
OpenAPI description for every kind of caller; a route without a row fails it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser
from vidrag_hub.errors import Unauthenticated

from tests.support.schedules import seed_schedule
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
    # the media route serves the file an ASR ingest keeps (a captions-only one downloads none)
    folder = lib.ctx.layout.media_dir(results[0].video_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audio.m4a").write_bytes((media_server.root / "lecture.m4a").read_bytes())
    return results[0].video_id


@dataclass
class World:
    """A fresh shared collection of alice's: bob editor, carol viewer, the group viewer."""

    id: str
    link_token: str
    link_id: str
    invite_id: str
    video_id: str | None
    job_id: str
    conversation_id: str  # the caller's own conversation on this collection
    schedule_id: str = ""  # a paused schedule of bob's with one finished run
    run_id: str = ""


def make_world(app, caller: str | None, video_id: str | None = None) -> World:
    from vidrag_hub import sharing

    service = app.state.service
    lib = service.library(HubUser("alice"))
    info = lib.collections.create(f"Course {uuid.uuid4().hex[:8]}")
    if video_id:
        lib.videos.add_to(info.id, video_id)
    from vidrag_kernel.catalog import Collection, Conversation, IngestJob

    with service.catalog.session() as s:
        row = s.get(Collection, info.id)
        sharing.grant(s, row, "user", "bob", "editor", "alice")
        sharing.grant(s, row, "user", "carol", "viewer", "alice")
        sharing.grant(s, row, "group", GROUP, "viewer", "alice")
        link, token = sharing.create_link(s, row, "viewer", "alice")
        invitee = caller if caller in USERS and caller != "alice" else "frank"
        invite, _ = sharing.invite(s, row, "user", invitee, "viewer", "alice")
        # a finished job queued by carol (an editor then, a viewer now): she still sees it
        job = IngestJob(
            owner=JOB_OWNER,
            collection_id=info.id,
            source="https://example.edu/old-lecture",
            state="failed",
            error="The ingest was cancelled before it finished.",
            error_kind="cancelled",
            timings={},
        )
        s.add(job)
        talk = Conversation(owner=caller if caller in USERS else "alice", title="Q", collection_id=info.id)
        s.add(talk)
        s.flush()
        world = World(info.id, token, link.id, invite.id, video_id, job.id, talk.id)
    world.schedule_id, world.run_id = seed_schedule(service, info.id, "bob")
    return world


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
JOB_OWNER = "carol"

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
    ("get", "/services/vidrag/api/collections/{collection_id}/videos/{video_id}/media"): (
        "viewer",
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
    ("get", "/services/vidrag/api/collections/{collection_id}/videos/{video_id}/corrections"): (
        "viewer",
        200,
        True,
        None,
    ),
    # a correction changes the video in every collection holding it: this video is also in
    # alice's own collection, so of the world's members only its owners (alice, ada) may
    ("post", "/services/vidrag/api/collections/{collection_id}/videos/{video_id}/corrections"): (
        "owner",
        200,
        True,
        lambda w: {"line": 1, "text": f"First, photosynthesis {uuid.uuid4().hex[:6]}."},
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
    ("post", "/services/vidrag/api/collections/{collection_id}/ask/stream"): (
        "viewer",
        200,
        True,
        lambda w: {"question": "What are the topics?"},
    ),
    # jobs go through the runner too: without one, an allowed caller gets 503
    ("get", "/services/vidrag/api/collections/{collection_id}/jobs"): ("editor", 503, False, None),
    ("get", "/services/vidrag/api/jobs/{job_id}"): ("job", 503, False, None),
    ("post", "/services/vidrag/api/jobs/{job_id}/cancel"): ("job", 503, False, None),
    ("post", "/services/vidrag/api/jobs/{job_id}/retry"): ("job", 503, False, None),
    ("get", "/services/vidrag/api/jobs/{job_id}/events"): ("job", 503, False, None),
    ("get", "/services/vidrag/metrics"): ("admin", 200, False, None),
    # scheduled batch ingests (vidrag_hub.schedules); no scheduler runs here: run-now is 503
    ("get", "/services/vidrag/api/collections/{collection_id}/schedules"): ("editor", 200, False, None),
    ("post", "/services/vidrag/api/collections/{collection_id}/schedules"): (
        "editor",
        201,
        False,
        lambda w: {
            "sources": ["https://example.edu/feed.xml"],
            "cron": "0 3 * * *",
            "timezone": "Europe/Berlin",
        },
    ),
    ("get", "/services/vidrag/api/schedules"): ("user", 200, False, None),
    ("get", "/services/vidrag/api/schedules/{schedule_id}"): ("editor", 200, False, None),
    ("patch", "/services/vidrag/api/schedules/{schedule_id}"): (
        "editor",
        200,
        False,
        lambda w: {"paused": True},
    ),
    ("delete", "/services/vidrag/api/schedules/{schedule_id}"): ("editor", 200, False, None),
    ("post", "/services/vidrag/api/schedules/{schedule_id}/run"): ("editor", 503, False, None),
    ("get", "/services/vidrag/api/schedules/{schedule_id}/runs"): ("editor", 200, False, None),
    ("get", "/services/vidrag/api/schedules/{schedule_id}/runs/{run_id}"): ("editor", 200, False, None),
    ("get", "/services/vidrag/api/schedules/{schedule_id}/runs/{run_id}/notebook"): (
        "editor",
        200,
        False,
        None,
    ),
    ("get", "/services/vidrag/api/usage"): ("user", 200, False, None),
    ("get", "/services/vidrag/api/usage/history"): ("user", 200, False, None),
    ("get", "/services/vidrag/api/admin/usage"): ("admin", 200, False, None),
    ("put", "/services/vidrag/api/admin/plans/{name}"): (
        "admin",
        200,
        False,
        lambda w: {"plan": "free", "note": "authorization matrix"},
    ),
    # class insights: aggregates of every member's questions, for owners and editors only
    ("get", "/services/vidrag/api/collections/{collection_id}/insights"): ("editor", 200, False, None),
    # billing is off in this app (no STRIPE_API_KEY): a caller who gets past auth hears so;
    # the webhook has no hub auth (its Stripe-Signature is the auth), so everyone does
    ("post", "/services/vidrag/api/billing/checkout"): ("user", 409, False, lambda w: {}),
    ("post", "/services/vidrag/api/billing/portal"): ("user", 409, False, lambda w: {}),
    ("post", "/services/vidrag/stripe/webhook"): ("public", 409, False, lambda w: {}),
    # each world's conversation is the caller's own: theirs to read while they may read the collection
    ("get", "/services/vidrag/api/conversations"): ("user", 200, False, None),
    ("get", "/services/vidrag/api/conversations/{conversation_id}"): ("viewer", 200, False, None),
    ("patch", "/services/vidrag/api/conversations/{conversation_id}"): (
        "viewer",
        200,
        False,
        lambda w: {"title": "Renamed"},
    ),
    ("delete", "/services/vidrag/api/conversations/{conversation_id}"): ("viewer", 200, False, None),
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
    if level == "admin":
        return allowed if caller == "ada" else 403
    if level == "job" and caller == JOB_OWNER:
        return allowed  # the user who queued it, whatever their role now
    role = ROLES[caller]
    if role is None:
        return 404
    if level == "job":
        level = "editor"
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
            job_id=world.job_id,
            conversation_id=world.conversation_id,
            schedule_id=world.schedule_id,
            run_id=world.run_id,
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
            # at least these three (a 429 also names its metric, limit, usage and upgrade path)
            assert {"error", "status", "message"} <= set(problem), problem
            assert problem["status"] == reply.status_code
            assert "Traceback" not in reply.text  # in no field (nor a token: below)
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


# ------------------------------------------------------------- streams, jobs, metrics
def sse(text: str) -> list[tuple[str, dict]]:
    """(event name, JSON data) of each event of a text/event-stream body (comments skipped)."""
    import json

    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), "message")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data)))
    return events


def test_a_viewer_gets_the_answer_streamed_as_server_sent_events(app, client, tokens, video):
    world = make_world(app, None, video)
    body = {"question": "What are the topics?"}
    reply = call(client, tokens["carol"], "POST", f"collections/{world.id}/ask/stream", json=body)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = sse(reply.text)
    *pieces, (last, answer) = events
    assert pieces and all(name == "message" and set(data) == {"text"} for name, data in pieces)
    assert last == "answer" and answer["citations"] and answer["conversation_id"]
    assert "".join(data["text"] for _, data in pieces).strip() == answer["answer"].strip()
    # the conversation is carol's own: a follow-up streams in it, frank cannot reach it
    again = call(
        client,
        tokens["carol"],
        "POST",
        f"collections/{world.id}/ask/stream",
        json={**body, "conversation": answer["conversation_id"]},
    )
    assert sse(again.text)[-1][1]["conversation_id"] == answer["conversation_id"]
    assert (
        call(client, tokens["frank"], "POST", f"collections/{world.id}/ask/stream", json=body).status_code
        == 404
    )


def test_class_insights_are_aggregates_of_five_askers_and_name_nobody(app, client, tokens, video):
    import json

    world = make_world(app, None, video)
    question = "What are the three topics of this lecture?"
    url = f"collections/{world.id}/insights"
    for n, name in enumerate(["alice", "bob", "carol", "dave", "ada"], 1):
        asked = call(client, tokens[name], "POST", f"collections/{world.id}/ask", json={"question": question})
        assert asked.status_code == 200, asked.text
        data = call(client, tokens["bob"], "GET", url).json()
        if n < 5:  # fewer than five students: nothing is shown, not even how many asked
            assert data["askers"] is None and data["topics"]["groups"] == []
            assert all(c == 0 for m in data["moments"] for c in m["citations"])
    assert data["askers"] == 5 and data["questions"] == 5 and data["local_fallback"] is False
    (topic,) = data["topics"]["groups"]
    assert topic["questions"] == 5 and topic["example"] == question
    # each of the five answers cites the lecture at least once (an answer may cite two sentences)
    assert max(data["moments"][0]["citations"]) >= 5 and data["moments"][0]["video_id"] == video
    assert not any(f'"{name}"' in json.dumps(data) for name in USERS)
    # the figures describe classmates: a viewer (a student) may not see them
    assert call(client, tokens["carol"], "GET", url).status_code == 403


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_requests_by_route_template_and_need_the_metrics_scope(app, client, hub, tokens):
    world = make_world(app, None)
    route = "/services/vidrag/api/collections/{collection_id}"
    before = metric(
        call(client, tokens["ada"], "GET", "/services/vidrag/metrics").text,
        "vidrag_http_requests_total",
        route=route,
        status="404",
    )
    assert call(client, tokens["frank"], "GET", f"collections/{world.id}").status_code == 404
    scraper = hub.token("ada", ["read:metrics"])  # the scope alone, as the hub's scraper holds it
    reply = call(client, scraper, "GET", "/services/vidrag/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert metric(text, "vidrag_http_requests_total", route=route, status="404") == before + 1
    assert world.id not in text  # templates, never raw paths
    assert metric(text, "vidrag_http_request_duration_seconds_count", route=route) >= 1
    assert metric(text, "vidrag_ingest_jobs", state="failed") >= 1  # each world's old job
    assert metric(text, "vidrag_ingest_workers") == 0  # no runner in this app yet
    assert "vidrag_ingest_queue_depth" in text
    # that token may read metrics and nothing else of the service
    assert call(client, scraper, "GET", "me").status_code == 403
    assert call(client, tokens["bob"], "GET", "/services/vidrag/metrics").status_code == 403


@pytest.fixture(scope="module")
def slow_pages(tmp_path_factory, media_root):
    """A captioned lecture page under a new name (a new video), served with a 1 s delay."""
    import shutil

    from tests.support.media_server import MediaServer

    root = tmp_path_factory.mktemp("job-pages")
    shutil.copy(media_root / "lecture.mp4", root / "jobs.mp4")
    shutil.copy(media_root / "lecture.vtt", root / "jobs.vtt")
    html = (media_root / "lecture.html").read_text()
    (root / "jobs.html").write_text(html.replace("lecture.", "jobs.").replace("Three topics", "Jobs"))
    server = MediaServer(root, delay=1.0)
    yield server
    server.stop()


def test_jobs_are_listed_cancelled_retried_and_streamed_through_the_runner(app, client, tokens, slow_pages):
    runner = app.state.service.ingest_workers()
    runner.start()
    app.state.runner = runner
    t = tokens
    try:
        world = make_world(app, None)
        queued = call(
            client,
            t["bob"],
            "POST",
            f"collections/{world.id}/ingest",
            json={"sources": [slow_pages.url("jobs.html")], "captions": "only"},
        )
        assert queued.status_code == 202, queued.text
        [job] = queued.json()["jobs"]
        # carol queued the world's old job, not this one: a viewer sees neither list nor job
        assert call(client, t["carol"], "GET", f"jobs/{job}").status_code == 403
        assert call(client, t["carol"], "GET", f"collections/{world.id}/jobs").status_code == 403
        assert call(client, t["carol"], "GET", f"jobs/{world.job_id}").json()["error_kind"] == "cancelled"
        listed = call(client, t["alice"], "GET", f"collections/{world.id}/jobs").json()
        assert {j["id"] for j in listed} == {job, world.job_id}

        cancelled = call(client, t["alice"], "POST", f"jobs/{job}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "failed" and cancelled.json()["error_kind"] == "cancelled"
        assert call(client, t["alice"], "POST", f"jobs/{job}/cancel").status_code == 400
        [(_, only)] = sse(call(client, t["bob"], "GET", f"jobs/{job}/events").text)
        assert only["state"] == "failed"

        retried = call(client, t["bob"], "POST", f"jobs/{job}/retry")
        assert retried.status_code == 202 and retried.json()["state"] == "queued"
        events = [data for _name, data in sse(call(client, t["bob"], "GET", f"jobs/{job}/events").text)]
        assert events[-1]["state"] == "done", events[-1]
        assert all(
            (a["state"], a["progress"]) != (b["state"], b["progress"])
            for a, b in zip(events, events[1:], strict=False)
        )
        assert len({e["state"] for e in events}) >= 2  # the stream saw it move, not just the end
        done = call(client, t["bob"], "GET", f"jobs/{job}").json()
        assert done["state"] == "done" and done["chunk_count"] > 0
        assert (
            call(client, t["alice"], "GET", f"collections/{world.id}/jobs", params={"state": "done"}).json()[
                0
            ]["id"]
            == job
        )
        text = call(client, t["ada"], "GET", "/services/vidrag/metrics").text
        assert metric(text, "vidrag_ingest_workers") == 1
        assert metric(text, "vidrag_ingest_jobs", state="done") >= 1
    finally:
        app.state.runner = None
        runner.close()


def test_a_revoked_token_is_refused_within_the_cache_time_and_expiries_are_spread(hub, tmp_path):
    """Identities are kept at most token_cache_seconds, each token for a random 50-100 % of
    it: a class whose tokens were first seen together is not re-checked all at once."""
    import asyncio

    from vidrag_hub.auth import HubIdentity

    identity = HubIdentity(hub.settings(tmp_path, token_cache_seconds=2))
    made = hub.ok("POST", "/users/dave/tokens", json={"note": "revoked in a test"})
    tokens = [made["token"], *(hub.token("dave") for _ in range(11))]

    async def run():
        try:
            for token in tokens:
                assert (await identity.user(token)).name == "dave"
            expiries = sorted(expiry for expiry, _ in identity._known.values())
            assert len(expiries) == 12 and expiries[-1] - expiries[0] > 0.05  # not all at once
            assert expiries[-1] - time.monotonic() <= 2.0
            first = tokens[0]
            hub.ok("DELETE", f"/users/dave/tokens/{made['id']}")
            assert (await identity.user(first)).name == "dave"  # still the cached identity
            await asyncio.sleep(2.1)
            with pytest.raises(Unauthenticated):
                await identity.user(first)
            assert (await identity.user(tokens[1])).name == "dave"  # checked again, still valid
        finally:
            await identity.close()

    asyncio.run(run())
