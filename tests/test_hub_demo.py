"""The real hub with the demo login: log in, spawn, reach the server through the proxy, land on
the dashboard, and check from a kernel what the server was given (environment, token scopes).

One hub for the module. It registers an external ``vidrag`` service entry (nothing listens
at its URL) so the service plumbing of the configuration is exercised: roles, the servers'
token scopes and the ``VIDRAG_SERVICE_*`` environment.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.hub import REPO, Hub, StandInService, hub_env, login_form, run_in_kernel

pytestmark = pytest.mark.hub

PASSWORD = "demo-password-for-tests"


@pytest.fixture(scope="module")
def service():
    service = StandInService("vidrag")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, service):
    root = tmp_path_factory.mktemp("hub-demo")
    hub = Hub(
        root=root,
        env=hub_env(root / "data", VIDRAG_AUTH="demo", VIDRAG_DEMO_PASSWORD=PASSWORD),
        extra_config=service.registration(),
    ).start()
    service.hub_api = f"http://127.0.0.1:{hub.env['VIDRAG_HUB_API_PORT']}/hub/api"
    yield hub
    survivors = hub.stop()
    assert survivors == [], f"left running after the hub stopped: {survivors}"


@pytest.fixture(scope="module")
def student(hub):
    """A browser-like client logged in as the demo student, with a running server."""
    client = httpx.Client(timeout=60)
    login = login_form(client, hub.url, "student", PASSWORD)
    assert login.status_code == 302, login.text
    assert login.headers["location"].endswith("/hub/spawn")
    spawn = client.get(hub.url + login.headers["location"], follow_redirects=False)
    assert spawn.status_code == 302
    hub.wait_ready("student")
    yield client
    client.close()


def test_login_spawn_and_reach_the_server_through_the_proxy(hub, student):
    # the first visit does the server's own OAuth dance with the hub, then serves Lab
    lab = student.get(f"{hub.url}/user/student/lab", follow_redirects=True)
    assert lab.status_code == 200
    assert str(lab.url) == f"{hub.url}/user/student/lab"
    status = student.get(f"{hub.url}/user/student/api/status")
    assert status.status_code == 200
    assert "started" in status.json()
    # and nobody else's cookie gets in
    assert httpx.get(f"{hub.url}/user/student/api/status").status_code in (302, 403)


def test_after_login_the_server_sends_people_to_the_voila_dashboard(hub, student):
    response = student.get(f"{hub.url}/user/student/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].rstrip("?") == "/user/student/voila/render/vidrag/workbench.ipynb"
    notebooks = hub.env["VIDRAG_HOME"] + "/users/student/notebooks/vidrag"
    for source in (REPO / "dashboards").glob("*.ipynb"):
        listing = student.get(f"{hub.url}/user/student/api/contents/vidrag").json()
        assert source.name in {item["name"] for item in listing["content"]}, notebooks


def test_wrong_password_and_unknown_users_are_refused(hub):
    with httpx.Client(timeout=30) as client:
        assert login_form(client, hub.url, "student", "not-the-password").status_code == 403
        assert login_form(client, hub.url, "mallory", PASSWORD).status_code == 403
        assert client.get(f"{hub.url}/hub/api/user").status_code == 403


def test_a_kernel_in_the_server_finds_the_hub_and_the_service(hub, student, service):
    code = (
        "import json, os, httpx\n"
        "from vidrag_kernel import hubenv\n"
        "env = hubenv.detect()\n"
        "me = httpx.get(env.api_url + '/user', headers=env.auth_headers()).json()\n"
        "print(json.dumps({'describe': env.describe(), 'user': env.user, 'api_url': env.api_url,\n"
        "  'prefix': env.service_prefix, 'service_url': env.service_url, 'service': env.service_name,\n"
        "  'scopes': me['scopes'], 'home': os.environ['VIDRAG_HOME'], 'owner': os.environ['VIDRAG_USER'],\n"
        "  'offline': os.environ.get('HF_HUB_OFFLINE'), 'repr': repr(env),\n"
        "  'service_says': httpx.get(env.service_url, headers=env.auth_headers()).json(),\n"
        "  'hub_users': httpx.get(env.api_url + '/users', headers=env.auth_headers()).status_code}))\n"
    )
    seen = json.loads(run_in_kernel(hub.url, "student", hub.admin_token, code))
    assert seen["user"] == "student"
    assert seen["api_url"] == f"http://127.0.0.1:{hub.env['VIDRAG_HUB_API_PORT']}/hub/api"
    assert seen["prefix"] == "/user/student/"
    assert seen["service"] == "vidrag"
    assert seen["service_url"] == service.url
    assert seen["home"] == hub.env["VIDRAG_HOME"] + "/users/student"
    assert seen["owner"] == "student"
    assert seen["offline"] == "1"
    assert "student" in seen["describe"] and "vidrag service" in seen["describe"]
    # the server's token may report activity, let its owner in and call the vidrag service: no more
    # (reading one's own name, groups and activity is implied for any token of the user)
    identity = {f"read:users:{what}!user=student" for what in ("name", "groups", "activity")}
    assert set(seen["scopes"]) - identity == {
        "users:activity!user=student",
        "access:servers!server=student/",
        "access:services!service=vidrag",
    }
    # so the service answers the server's token, and the hub API refuses anything else
    assert seen["service_says"] == {"name": "student"}
    assert seen["hub_users"] == 403
    assert "token" not in seen["repr"].replace("a token", "")


def test_groups_roles_and_services(hub):
    groups = {g["name"]: set(g["users"]) for g in hub.api("GET", "/groups").json()}
    assert groups["instructors"] == {"instructor"}
    assert groups["cs101"] == {"instructor", "student"}
    instructor = hub.api("GET", "/users/instructor").json()
    assert instructor["admin"] is True
    assert hub.api("GET", "/users/student").json()["admin"] is False
    groups_api = hub.api("GET", "/groups/instructors").json()
    assert groups_api["roles"] == ["instructor"]
    assert "user" in hub.api("GET", "/users/student").json()["roles"]
    assert hub.api("GET", "/services/vidrag").json()["roles"] == ["vidrag-service"]
    culler = hub.api("GET", "/services/idle-culler").json()
    assert culler["roles"] == ["idle-culler"]
    assert culler["command"][-1] == "--timeout=3600"
    assert culler["pid"] > 0


def test_the_vidrag_service_may_read_users_and_groups_and_nothing_more(hub, service):
    me = httpx.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {service.token}"}, timeout=30
    ).json()
    assert set(me["scopes"]) == {"read:users", "read:groups"} | {
        s for s in me["scopes"] if s.startswith(("read:users:", "read:groups:"))
    }
    assert (
        httpx.delete(
            f"{hub.url}/hub/api/users/student/server", headers={"Authorization": f"token {service.token}"}
        ).status_code
        == 403
    )


def test_instructors_can_read_rosters_and_students_cannot(hub):
    tokens = {}
    for name in ("instructor", "student"):
        made = hub.api("POST", f"/users/{name}/tokens", json={"note": "roster test", "expires_in": 600})
        assert made.status_code == 201, made.text
        tokens[name] = made.json()["token"]

    def groups(name):
        return httpx.get(
            f"{hub.url}/hub/api/groups/cs101", headers={"Authorization": f"token {tokens[name]}"}
        )

    assert set(groups("instructor").json()["users"]) == {"instructor", "student"}
    assert groups("student").status_code in (403, 404)
