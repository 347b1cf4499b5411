"""GitHub and Google login end to end: the real hub with OAuthenticator, against an OAuth2
provider on 127.0.0.1 that speaks GitHub's and Google's protocol (tests/support/oauth_provider.py).

The authenticators are pointed at it through their URL options on the command line
(``--GitHubOAuthenticator.github_url`` ...), so vidrag's configuration file runs unchanged.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from tests.support.hub import Hub, free_port, hub_env
from tests.support.oauth_provider import Account, OAuthProvider

pytestmark = pytest.mark.hub

CLIENT_ID = "vidrag-test-client"
CLIENT_SECRET = "vidrag-test-secret"


def start_hub(tmp_path_factory, name: str, provider: OAuthProvider, args: list[str], **env: str) -> Hub:
    root = tmp_path_factory.mktemp(name)
    port = free_port()
    callback = f"http://127.0.0.1:{port}/hub/oauth_callback"
    provider.redirect_uri = callback
    environment = hub_env(
        root / "data",
        VIDRAG_HUB_PORT=str(port),
        VIDRAG_IDLE_TIMEOUT="0",
        OAUTH_CLIENT_ID=CLIENT_ID,
        OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        OAUTH_CALLBACK_URL=callback,
        **env,
    )
    return Hub(root=root, env=environment, args=args).start()


def oauth_login(hub: Hub, provider: OAuthProvider, login: str | None, forge_state: bool = False):
    """Go through the login as a browser: hub -> provider -> hub callback. The callback's response."""
    client = httpx.Client(timeout=30)
    start = client.get(f"{hub.url}/hub/oauth_login", follow_redirects=False)
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert authorize.startswith(provider.authorize_url + "?")
    provider.sign_in(login)
    back = client.get(authorize, follow_redirects=False)
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    assert callback.startswith(f"{hub.url}/hub/oauth_callback?")
    if forge_state:
        query = {k: v[0] for k, v in parse_qs(urlparse(callback).query).items()}
        query["state"] = "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ=="  # base64 of {"state_id": "forged"}
        callback = f"{hub.url}/hub/oauth_callback?{urlencode(query)}"
    response = client.get(callback, follow_redirects=False)
    return client, response


# ---------------------------------------------------------------------------------- GitHub
@pytest.fixture(scope="module")
def github():
    provider = OAuthProvider("github", CLIENT_ID, CLIENT_SECRET)
    provider.add(Account("alice", email="alice@example.org", orgs={"vidrag-school"}))
    provider.add(Account("carol", email="carol@example.org", orgs={"other-org:tas"}))
    provider.add(Account("bob", email="bob@example.org", orgs={"other-org"}))
    provider.add(Account("dave", email="dave@example.org"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def github_hub(tmp_path_factory, github):
    hub = start_hub(
        tmp_path_factory,
        "hub-github",
        github,
        [
            f"--GitHubOAuthenticator.github_url={github.url}",
            f"--GitHubOAuthenticator.github_api={github.github_api}",
        ],
        VIDRAG_AUTH="github",
        VIDRAG_GITHUB_ORGS="vidrag-school,other-org:tas",
        VIDRAG_ADMIN_USERS="dave",
        VIDRAG_INSTRUCTORS="alice",
    )
    yield hub
    assert hub.stop() == []


def test_github_org_member_gets_in(github_hub, github):
    client, response = oauth_login(github_hub, github, "alice")
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/hub/spawn"
    me = client.get(f"{github_hub.url}/hub/api/user")
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert github_hub.api("GET", "/users/alice").json()["admin"] is False
    # the hub exchanged the code with its secret and checked membership with the user's token
    assert ("POST", "/login/oauth/access_token", 200) in github.requests
    assert ("GET", "/api/v3/orgs/vidrag-school/members/alice", 204) in github.requests


def test_github_team_member_gets_in(github_hub, github):
    _, response = oauth_login(github_hub, github, "carol")
    assert response.status_code == 302, response.text
    assert ("GET", "/api/v3/orgs/other-org/teams/tas/members/carol", 204) in github.requests
    assert github_hub.api("GET", "/users/carol").json()["admin"] is False


def test_github_admin_gets_in_by_name(github_hub, github):
    _, response = oauth_login(github_hub, github, "dave")
    assert response.status_code == 302, response.text
    assert github_hub.api("GET", "/users/dave").json()["admin"] is True


def test_github_non_member_is_refused_with_a_clear_page(github_hub, github):
    client, response = oauth_login(github_hub, github, "bob")
    assert response.status_code == 403
    assert "not a member of" in response.text and "vidrag-school" in response.text
    assert client.get(f"{github_hub.url}/hub/api/user").status_code == 403
    assert github_hub.api("GET", "/users/bob").status_code == 404


def test_github_forged_state_is_refused(github_hub, github):
    before = len([r for r in github.requests if r[1] == "/login/oauth/access_token"])
    client, response = oauth_login(github_hub, github, "alice", forge_state=True)
    assert response.status_code == 400
    assert "OAuth state mismatch" in response.text
    assert client.get(f"{github_hub.url}/hub/api/user").status_code == 403
    # refused before the code was ever exchanged
    assert len([r for r in github.requests if r[1] == "/login/oauth/access_token"]) == before


# ---------------------------------------------------------------------------------- Google
@pytest.fixture(scope="module")
def google():
    provider = OAuthProvider("google", CLIENT_ID, CLIENT_SECRET)
    provider.add(Account("ann@school.edu", email="ann@school.edu", hd="school.edu"))
    provider.add(Account("eve@gmail.com", email="eve@gmail.com"))
    provider.add(Account("uma@school.edu", email="uma@school.edu", hd="school.edu", email_verified=False))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def google_hub(tmp_path_factory, google):
    hub = start_hub(
        tmp_path_factory,
        "hub-google",
        google,
        [
            f"--GoogleOAuthenticator.authorize_url={google.authorize_url}",
            f"--GoogleOAuthenticator.google_api_url={google.url}",
        ],
        VIDRAG_AUTH="google",
        VIDRAG_GOOGLE_DOMAINS="school.edu",
    )
    yield hub
    assert hub.stop() == []


def test_google_user_in_the_hosted_domain_gets_in(google_hub, google):
    client, response = oauth_login(google_hub, google, "ann@school.edu")
    assert response.status_code == 302, response.text
    # one hosted domain: usernames drop it
    assert client.get(f"{google_hub.url}/hub/api/user").json()["name"] == "ann"
    assert ("GET", "/oauth2/v1/userinfo", 200) in google.requests


def test_google_user_outside_the_domain_is_refused(google_hub, google):
    client, response = oauth_login(google_hub, google, "eve@gmail.com")
    assert response.status_code == 403
    assert "not in school.edu" in response.text
    assert client.get(f"{google_hub.url}/hub/api/user").status_code == 403


def test_google_unverified_email_is_refused(google_hub, google):
    _, response = oauth_login(google_hub, google, "uma@school.edu")
    assert response.status_code == 403
    assert "unverified email" in response.text


def test_google_forged_state_is_refused(google_hub, google):
    _, response = oauth_login(google_hub, google, "ann@school.edu", forge_state=True)
    assert response.status_code == 400
    assert "OAuth state mismatch" in response.text
