"""``vidrag share|members|links|invites`` as a user runs them in a hub server.

The real ``vidrag`` command in a subprocess, with the environment a JupyterHub server
gives (``JUPYTERHUB_API_URL``, the user's own hub token, ``VIDRAG_SERVICE_URL``), so its
``Workbench()`` finds the service through ``hubenv.detect()``. The service is the real app
(``make_app``) on uvicorn on 127.0.0.1, checking tokens with a real JupyterHub."""

from __future__ import annotations

import json

import pytest
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser

from tests.support.cli import vidrag
from tests.support.service import Served, ServiceHub
from vidrag_kernel.cli.sharing import NO_SERVICE, expiry_days
from vidrag_kernel.errors import InvalidInput

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("cli-sharing-hub")).start()
    for name in ("ada", "sam", "kim", "lee", "max"):
        hub.user(name)
    hub.group("instructors", ["ada"])
    hub.group("cs101", ["kim", "max"])
    app = make_app(hub.settings(tmp_path_factory.mktemp("cli-sharing-root")))
    with Served(app, hub.service_port) as served:
        lib = app.state.service.library(HubUser("ada", groups=frozenset({"instructors"})))
        lib.collections.create("Course", instructor="Ada")
        hub.served = served
        yield hub
    assert hub.stop() == []


class As:
    """``vidrag`` run as one hub user from their server (their own home and token)."""

    def __init__(self, hub: ServiceHub, home, user: str) -> None:
        self.home = home / user
        self.env = {
            "JUPYTERHUB_API_URL": hub.api_url,
            "JUPYTERHUB_API_TOKEN": hub.token(user),
            "JUPYTERHUB_USER": user,
            "VIDRAG_SERVICE_URL": hub.served.url,
            "VIDRAG_SERVICE_NAME": "vidrag",
        }
        self.user = user

    def __call__(self, *args: str):
        return vidrag(self.home, *args, user=self.user, env=self.env)

    def ok(self, *args: str):
        done = self(*args)
        assert done.returncode == 0, (args, done.returncode, done.stderr)
        return json.loads(done.stdout) if "--json" in args else done.stdout


def refused(done, code: int | None = None) -> str:
    """The one line a refusal prints (and no traceback); checks the exit code."""
    assert done.returncode != 0 and (code is None or done.returncode == code), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidrag: error: "), done.stderr
    return lines[0]


def test_expiry_values_read_as_days():
    assert expiry_days("7d") == 7 and expiry_days("2w") == 14 and expiry_days("12h") == 0.5
    assert expiry_days("30m") == pytest.approx(30 / 1440) and expiry_days("3") == 3
    with pytest.raises(InvalidInput):
        expiry_days("next tuesday")


def test_no_token_starts_with_a_dash_so_the_command_line_takes_every_one():
    from vidrag_hub.sharing import TOKEN_BYTES, new_token

    # one token_urlsafe draw in 64 starts with "-", which argparse reads as an option
    # (a CI run once failed on `vidrag links redeem -YzPr…`); 3,000 draws all but surely hit it
    tokens = [new_token() for _ in range(3000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == len(tokens) and all(len(t) >= TOKEN_BYTES * 4 // 3 for t in tokens)


def test_sharing_commands_outside_a_hub_say_they_need_the_service(tmp_path):
    done = vidrag(tmp_path / "home", "members", "Course", env={"JUPYTERHUB_API_URL": ""})
    assert refused(done) == f"vidrag: error: {NO_SERVICE}"
    done = vidrag(tmp_path / "home", "links", "list", "Course", env={"JUPYTERHUB_API_URL": ""})
    assert NO_SERVICE in refused(done)


def test_share_then_members_shows_the_grants(hub, tmp_path):
    ada = As(hub, tmp_path, "ada")
    assert "with user sam as viewer" in ada.ok("share", "Course", "--user", "sam")
    grant = ada.ok("share", "Course", "--group", "cs101", "--role", "editor", "--json")
    assert grant["kind"] == "group" and grant["role"] == "editor"

    members = {(m["kind"], m["name"], m["role"]) for m in ada.ok("members", "Course", "--json")}
    assert {("user", "ada", "owner"), ("user", "sam", "viewer"), ("group", "cs101", "editor")} <= members
    table = ada.ok("members", "Course")
    assert "sam" in table and "cs101" in table and "owner" in table


def test_a_viewers_share_is_refused_as_forbidden(hub, tmp_path):
    As(hub, tmp_path, "ada").ok("share", "Course", "--user", "sam")
    sam = As(hub, tmp_path, "sam")
    assert "Course" in sam.ok("collections", "list")  # the viewer sees it, shared
    refused(sam("share", "Course", "--user", "lee", "--role", "editor"), 3)
    refused(sam("links", "create", "Course"), 3)


def test_links_are_created_listed_redeemed_and_revoked(hub, tmp_path):
    ada = As(hub, tmp_path, "ada")
    link = ada.ok(
        "links", "create", "Course", "--expires", "2d", "--uses", "3", "--note", "for lee", "--json"
    )
    assert link["token"] and link["max_uses"] == 3 and link["state"] == "active"

    # another user joins through the link as they received it (the join path)
    lee = As(hub, tmp_path, "lee")
    assert "as viewer" in lee.ok("links", "redeem", link["join_path"])
    assert "Course" in lee.ok("collections", "list")

    [listed] = [x for x in ada.ok("links", "list", "Course", "--json") if x["id"] == link["id"]]
    assert listed["uses"] == 1 and listed["note"] == "for lee" and listed["token"] is None
    table = ada.ok("links", "list", "Course")
    assert link["id"] in table and "1/3" in table

    assert "Revoked" in ada.ok("links", "revoke", "Course", link["id"])
    [listed] = [x for x in ada.ok("links", "list", "Course", "--json") if x["id"] == link["id"]]
    assert listed["state"] == "revoked"
    # the revoked token is refused, saying it was revoked
    line = refused(As(hub, tmp_path, "max")("links", "redeem", link["token"]))
    assert "revoked" in line
    line = refused(As(hub, tmp_path, "max")("links", "redeem", "not-a-real-token"), 4)
    assert "not valid" in line


def test_invites_are_listed_accepted_and_declined(hub, tmp_path):
    ada = As(hub, tmp_path, "ada")
    to_kim = ada.ok("share", "Course", "--user", "kim", "--invite", "--json")
    to_max = ada.ok("share", "Course", "--user", "max", "--invite", "--role", "editor", "--json")

    kim = As(hub, tmp_path, "kim")
    waiting = kim.ok("invites", "list", "--json")
    assert [(i["id"], i["collection"], i["invited_by"]) for i in waiting] == [(to_kim["id"], "Course", "ada")]
    assert "Course" in kim.ok("invites", "list")
    assert "viewer on 'Course'" in kim.ok("invites", "accept", to_kim["id"])
    assert kim.ok("invites", "list", "--json") == []
    refused(kim("invites", "accept", to_kim["id"]), 5)  # answered already: a conflict

    mx = As(hub, tmp_path, "max")
    assert "Declined" in mx.ok("invites", "decline", to_max["id"])
    members = {(m["name"], m["role"]) for m in ada.ok("members", "Course", "--json")}
    assert ("kim", "viewer") in members and "max" not in {name for name, _ in members}

    # an e-mail invite is answered with its token, by whoever logs in with the link
    by_mail = ada.ok("share", "Course", "--email", "tutor@example.org", "--role", "editor", "--json")
    assert by_mail["token"] and by_mail["kind"] == "email"
    refused(mx("invites", "accept", by_mail["id"]), 4)  # without the token it is no one's
    assert "editor on 'Course'" in mx.ok("invites", "accept", by_mail["id"], "--token", by_mail["token"])
    [answered] = [
        i for i in ada.ok("invites", "list", "--collection", "Course", "--json") if i["id"] == by_mail["id"]
    ]
    assert [(a["user"], a["answer"]) for a in answered["answers"]] == [("max", "accepted")]
