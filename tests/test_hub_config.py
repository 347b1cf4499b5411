"""The hub configuration without a running hub: options from the environment, the config
file's refusals, the per-user folders, ``vidrag_kernel.hubenv``; and the demo login's
refusal to start on a non-loopback address, with the real ``jupyterhub`` command.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config, PyFileConfigLoader

from hub_config import CONFIG_FILE, SERVER_CONFIG_FILE
from hub_config.options import VidragHubOptions, is_loopback
from hub_config.spawning import kernel_setting_names, landing_path, refresh_dashboards, safe_dirname
from tests.support.hub import hub_env
from vidrag_kernel import hubenv


def load_config(monkeypatch, tmp_path: Path, **env: str) -> Config:
    """Run jupyterhub_config.py as JupyterHub would, with only ``env`` set among vidrag's variables."""
    for key in list(__import__("os").environ):
        if key.startswith(("VIDRAG_", "OAUTH_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VIDRAG_HOME", str(tmp_path / "data"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loader = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent))
    return loader.load_config()


# ------------------------------------------------------------------------------ hubenv
def test_hubenv_is_none_outside_a_hub():
    assert hubenv.detect({}) is None
    assert hubenv.detect({"JUPYTERHUB_USER": "alice"}) is None


def test_hubenv_reads_the_server_environment_and_never_shows_the_token():
    env = hubenv.detect(
        {
            "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api/",
            "JUPYTERHUB_API_TOKEN": "s3cr3t-token",
            "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
            "JUPYTERHUB_BASE_URL": "/",
            "VIDRAG_SERVICE_URL": "http://127.0.0.1:10101",
            "VIDRAG_SERVICE_NAME": "vidrag",
        }
    )
    assert env.api_url == "http://127.0.0.1:8081/hub/api"
    assert env.user == "alice" and env.service_prefix == "/user/alice/"
    assert env.has_service and env.service_name == "vidrag"
    assert env.auth_headers() == {"Authorization": "token s3cr3t-token"}
    for text in (env.describe(), repr(env), str(env)):
        assert "s3cr3t" not in text
    assert "alice" in env.describe() and "http://127.0.0.1:10101" in env.describe()
    with pytest.raises(AttributeError):
        env.user = "mallory"  # frozen


def test_hubenv_without_a_service():
    env = hubenv.detect({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"})
    assert not env.has_service and env.auth_headers() == {}
    assert "no vidrag service" in env.describe()


# ----------------------------------------------------------------------------- options
def test_options_read_the_environment():
    opts = VidragHubOptions(
        environ={
            "VIDRAG_AUTH": "GitHub",
            "VIDRAG_HUB_PORT": "9000",
            "VIDRAG_GITHUB_ORGS": "school, other:tas",
            "VIDRAG_COURSE_GROUPS": "cs101=ann,bob; cs102=cy",
            "VIDRAG_LAND_ON_DASHBOARD": "no",
            "VIDRAG_CPU_LIMIT": "0.5",
        }
    )
    assert opts.auth == "github" and opts.hub_port == 9000
    assert opts.github_orgs == ["school", "other:tas"]
    assert opts.course_groups == {"cs101": ["ann", "bob"], "cs102": ["cy"]}
    assert opts.land_on_dashboard is False and landing_path(opts) == "/lab"
    assert opts.cpu_limit == 0.5


def test_config_file_values_win_over_the_environment():
    config = Config()
    config.VidragHubOptions.hub_port = 7000
    opts = VidragHubOptions(config=config, environ={"VIDRAG_HUB_PORT": "9000"})
    assert opts.hub_port == 7000


@pytest.mark.parametrize(
    "env, message",
    [
        ({"VIDRAG_HUB_PORT": "eighty"}, "VIDRAG_HUB_PORT"),
        ({"VIDRAG_AUTH": "pam"}, "VIDRAG_AUTH"),
        ({"VIDRAG_COURSE_GROUPS": "cs101"}, "name=user1,user2"),
    ],
)
def test_bad_option_values_name_their_variable(env, message):
    with pytest.raises(ValueError, match=message):
        VidragHubOptions(environ=env)


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("::")
    assert not is_loopback("10.1.2.3")


# ------------------------------------------------------------------------ config file
def test_demo_config(monkeypatch, tmp_path):
    c = load_config(monkeypatch, tmp_path, VIDRAG_DEMO_PASSWORD="long-enough-password")
    assert c.JupyterHub.authenticator_class == "hub_config.demo_auth.DemoAuthenticator"
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.port == 8000
    assert c.JupyterHub.cleanup_servers and c.JupyterHub.cleanup_proxy
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'data' / 'hub' / 'jupyterhub.sqlite'}"
    token_file = tmp_path / "data" / "hub" / "proxy-auth-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert c.ConfigurableHTTPProxy.auth_token == token_file.read_text()
    assert c.Spawner.default_url == "/voila/render/vidrag/workbench.ipynb"
    assert c.JupyterHub.load_groups["instructors"] == {"users": ["instructor"]}
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["idle-culler"]  # no vidrag service until it exists
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["server"]["scopes"] == ["users:activity!user", "access:servers!server"]
    assert "vidrag-service" not in roles


def test_demo_refuses_a_public_address(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="loopback"):
        load_config(
            monkeypatch, tmp_path, VIDRAG_DEMO_PASSWORD="long-enough-password", VIDRAG_HUB_IP="0.0.0.0"
        )


def test_demo_needs_a_password(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="VIDRAG_DEMO_PASSWORD"):
        load_config(monkeypatch, tmp_path)


def test_oauth_needs_credentials_from_the_environment(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET"):
        load_config(monkeypatch, tmp_path, VIDRAG_AUTH="github", VIDRAG_GITHUB_ORGS="school")
    with pytest.raises(ValueError, match="lets nobody in"):
        load_config(monkeypatch, tmp_path, VIDRAG_AUTH="github", OAUTH_CLIENT_ID="i", OAUTH_CLIENT_SECRET="s")


def test_github_and_google_config(monkeypatch, tmp_path):
    creds = {
        "OAUTH_CLIENT_ID": "id",
        "OAUTH_CLIENT_SECRET": "secret",
        "OAUTH_CALLBACK_URL": "https://h/hub/oauth_callback",
    }
    c = load_config(monkeypatch, tmp_path, VIDRAG_AUTH="github", VIDRAG_GITHUB_ORGS="school:staff", **creds)
    assert c.JupyterHub.authenticator_class == "github"
    assert c.GitHubOAuthenticator.allowed_organizations == {"school:staff"}
    assert c.GitHubOAuthenticator.scope == ["read:org"]
    assert c.OAuthenticator.client_secret == "secret"
    assert c.OAuthenticator.oauth_callback_url == "https://h/hub/oauth_callback"
    c = load_config(monkeypatch, tmp_path, VIDRAG_AUTH="google", VIDRAG_GOOGLE_DOMAINS="school.edu", **creds)
    assert c.JupyterHub.authenticator_class.endswith("VidragGoogleOAuthenticator")
    assert c.GoogleOAuthenticator.hosted_domain == ["school.edu"]
    assert c.VidragGoogleOAuthenticator.allow_hosted_domains is True


def test_docker_spawner_config(monkeypatch, tmp_path):
    creds = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret"}
    c = load_config(
        monkeypatch,
        tmp_path,
        VIDRAG_AUTH="github",
        VIDRAG_ALLOWED_USERS="ann",
        VIDRAG_SPAWNER="docker",
        **creds,
    )
    assert c.JupyterHub.spawner_class == "docker"
    assert c.DockerSpawner.volumes["vidrag-shared"] == {"bind": "/srv/vidrag/shared", "mode": "ro"}
    assert c.DockerSpawner.mem_limit == "4G" and c.DockerSpawner.cpu_limit == 2.0
    assert c.DockerSpawner.environment["VIDRAG_USER"] == "{username}"


def test_servers_take_uploads_up_to_the_dashboards_limit(monkeypatch, tmp_path):
    """Jupyter's websocket limit leaves room for the biggest upload, base64-encoded, in the
    single-user image's config and on a local server's command line alike."""
    from vidrag_dashboards.uploads import MAX_UPLOAD_MB

    image = json.loads(SERVER_CONFIG_FILE.read_text())
    limit = image["ServerApp"]["tornado_settings"]["websocket_max_message_size"]
    assert limit >= MAX_UPLOAD_MB * 1e6 * 4 / 3 + 1e6
    dockerfile = SERVER_CONFIG_FILE.with_name("Dockerfile").read_text()
    assert "hub_config/docker/jupyter_server_config.json /etc/jupyter/jupyter_server_config.d/" in dockerfile
    c = load_config(monkeypatch, tmp_path, VIDRAG_DEMO_PASSWORD="long-enough-password")
    (arg,) = [a for a in c.Spawner.args if a.startswith("--ServerApp.tornado_settings=")]
    assert json.loads(arg.split("=", 1)[1]) == {"websocket_max_message_size": limit}


def test_servers_get_the_kernel_settings():
    names = kernel_setting_names()
    assert "HF_HUB_OFFLINE" in names and "VIDRAG_LLM_MODEL" in names
    assert "VIDRAG_HOME" not in names and "VIDRAG_USER" not in names


# ------------------------------------------------------------------------ user folders
def test_safe_dirname():
    assert safe_dirname("alice") == "alice"
    assert safe_dirname("ann.lee@school.edu") == "ann.lee-40school.edu"
    assert safe_dirname("../etc") == "_..-2fetc"
    assert "/" not in safe_dirname("a/b") and safe_dirname("a-b") != safe_dirname("a_b")


def test_dashboards_are_copied_read_only_and_refreshed(tmp_path):
    source = tmp_path / "dashboards"
    source.mkdir()
    (source / "workbench.ipynb").write_text("v1")
    (source / "module.py").write_text("not a notebook")
    root = tmp_path / "notebooks"
    assert [p.name for p in refresh_dashboards(source, root)] == ["workbench.ipynb"]
    copy = root / "vidrag" / "workbench.ipynb"
    assert copy.read_text() == "v1" and not copy.stat().st_mode & stat.S_IWUSR
    (source / "workbench.ipynb").write_text("v2")
    refresh_dashboards(source, root)
    assert copy.read_text() == "v2"
    assert not (root / "vidrag" / "module.py").exists()


# ------------------------------------------------------------------- the real command
@pytest.mark.hub
@pytest.mark.parametrize(
    "env, args, message",
    [
        # refused by the configuration file
        ({"VIDRAG_HUB_IP": "0.0.0.0"}, [], "VIDRAG_AUTH=demo refuses VIDRAG_HUB_IP='0.0.0.0'"),
        # and by the authenticator, when the address comes from elsewhere (command line)
        ({}, ["--JupyterHub.ip="], "Refusing to start the demo login"),
    ],
)
def test_demo_login_refuses_to_start_on_a_non_loopback_bind(tmp_path, env, args, message):
    environment = hub_env(
        tmp_path / "data", VIDRAG_AUTH="demo", VIDRAG_DEMO_PASSWORD="long-enough-password", **env
    )
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert message in output
    assert "Starting proxy" not in output and "is now running" not in output


def test_the_services_signing_secrets_outlive_a_hub_restart(monkeypatch, tmp_path):
    """Session cookies and scheduled runs' tokens are signed with secrets kept in the hub's
    state folder, so a restart neither logs browsers out nor voids a run in progress."""
    env = {"VIDRAG_DEMO_PASSWORD": "long-enough-password", "VIDRAG_SERVICE_ENABLED": "1"}
    first = load_config(monkeypatch, tmp_path, **env)
    again = load_config(monkeypatch, tmp_path, **env)
    [one] = [s for s in first.JupyterHub.services if s["name"] == "vidrag"]
    [two] = [s for s in again.JupyterHub.services if s["name"] == "vidrag"]
    for name in ("VIDRAG_COOKIE_SECRET", "VIDRAG_RUN_TOKEN_SECRET"):
        assert len(one["environment"][name]) >= 32 and one["environment"][name] == two["environment"][name]
    assert one["environment"]["VIDRAG_COOKIE_SECRET"] != one["environment"]["VIDRAG_RUN_TOKEN_SECRET"]
    secret = tmp_path / "data" / "hub" / "vidrag-run-token-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_free_ports_are_never_handed_out_twice():
    from hub_config.options import free_port

    # the kernel may offer a just-closed port again: a CI run once got the proxy's public
    # and API ports equal (EADDRINUSE); 300 draws from ~28,000 ephemeral ports all but
    # surely repeat one without the memo
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
