"""vidrag's JupyterHub configuration, driven by environment variables.

Run it with ``jupyterhub -f hub_config/jupyterhub_config.py`` (``make run`` does this for
the local demo through ``python -m hub_config.launch``). Every knob is an option of
:class:`hub_config.options.VidragHubOptions`, read from a ``VIDRAG_*`` variable (or from
``c.VidragHubOptions`` in a config file that loads this one); ``python -m
hub_config.options`` lists them with their help. OAuth secrets come from the environment
only (``OAUTH_CLIENT_ID``, ``OAUTH_CLIENT_SECRET``, ``OAUTH_CALLBACK_URL``).
``VIDRAG_HUB_EXTRA_CONFIG`` names a config file loaded first, for a site's own additions
(more services, ``c.VidragHubOptions`` values).

Sections: addresses and hub state, login, servers (spawner and landing page), groups and
roles, services (the idle culler; the vidrag service's plumbing).
"""

import json
import os
import secrets
import sys
from pathlib import Path

from traitlets.config import LazyConfigValue

from hub_config import SERVER_CONFIG_FILE
from hub_config.options import REPO_ROOT, VidragHubOptions, free_port, is_loopback
from hub_config.plans import VidragPlans
from hub_config.spawning import kernel_setting_names, landing_path, local_pre_spawn_hook, preheat_args

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

# A site's own additions (extra services, c.VidragHubOptions values...) load first, so
# everything below sees them: e.g. a registered vidrag service turns on its plumbing.
if os.environ.get("VIDRAG_HUB_EXTRA_CONFIG"):
    load_subconfig(os.environ["VIDRAG_HUB_EXTRA_CONFIG"])  # noqa: F821 - provided by JupyterHub

opts = VidragHubOptions(config=c)


def _secret_file(path: Path, nbytes: int = 32) -> str:
    """Read a secret kept in ``path``, creating it (mode 600) on first use."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(nbytes))
    return path.read_text().strip()


def _as_list(value) -> list:
    """A list option's value so far: set directly, appended to (lazily) in an extra config, or unset."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, LazyConfigValue):
        return list(value.get_value([]))
    return []


# ---------------------------------------------------------------- addresses and hub state
opts.hub_state_dir.mkdir(parents=True, exist_ok=True)
opts.hub_state_dir.chmod(0o700)

c.JupyterHub.ip = opts.hub_ip
c.JupyterHub.port = opts.hub_port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = opts.hub_api_port
c.JupyterHub.db_url = opts.db_url or f"sqlite:///{opts.hub_state_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(opts.hub_state_dir / "jupyterhub_cookie_secret")

c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{opts.proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = _secret_file(opts.hub_state_dir / "proxy-auth-token")
c.ConfigurableHTTPProxy.pid_file = str(opts.hub_state_dir / "jupyterhub-proxy.pid")
_chp = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
if _chp.exists():
    c.ConfigurableHTTPProxy.command = [str(_chp)]

# Stopping the hub (Ctrl-C in `make run`) stops the proxy and every server it started.
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# ----------------------------------------------------------------------------- login
if opts.auth == "demo":
    # Checked here as well as in the authenticator, so a public bind fails before any setup.
    if not is_loopback(opts.hub_ip):
        raise ValueError(
            f"VIDRAG_AUTH=demo refuses VIDRAG_HUB_IP={opts.hub_ip!r}: the demo login shares one "
            "password and runs on a loopback address (127.0.0.1) only. "
            "Set VIDRAG_AUTH=github or VIDRAG_AUTH=google to serve a course."
        )
    password = opts.demo_password
    password_file = opts.home_path / "demo-password"
    if not password and password_file.exists():
        password = password_file.read_text().strip()
    if not password:
        raise ValueError(
            f"VIDRAG_AUTH=demo needs VIDRAG_DEMO_PASSWORD (or run `make run`, which creates {password_file})."
        )
    c.JupyterHub.authenticator_class = "hub_config.demo_auth.DemoAuthenticator"
    c.DemoAuthenticator.users = opts.demo_users
    c.DemoAuthenticator.password = password
    admins = opts.admin_users or opts.demo_users[:1]
    instructors = opts.instructors or opts.demo_users[:1]
    course_groups = opts.course_groups or {"cs101": list(opts.demo_users)}
    c.JupyterHub.template_vars = {
        "announcement_login": f"vidrag demo: log in as {' or '.join(opts.demo_users)} "
        "with the password `make run` printed."
    }
else:
    client_secret = os.environ.get("OAUTH_CLIENT_SECRET", "")
    if not opts.oauth_client_id or not client_secret:
        raise ValueError(
            f"VIDRAG_AUTH={opts.auth} needs OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET from your "
            f"{opts.auth.capitalize()} OAuth app (and OAUTH_CALLBACK_URL, its callback URL)."
        )
    admins, instructors, course_groups = opts.admin_users, opts.instructors, opts.course_groups
    c.OAuthenticator.client_id = opts.oauth_client_id
    c.OAuthenticator.client_secret = client_secret
    if opts.oauth_callback_url:
        c.OAuthenticator.oauth_callback_url = opts.oauth_callback_url
    c.OAuthenticator.allowed_users = set(opts.allowed_users)

    if opts.auth == "github":
        c.JupyterHub.authenticator_class = "github"
        if not (opts.github_orgs or opts.allowed_users or admins):
            raise ValueError(
                "VIDRAG_AUTH=github lets nobody in: set VIDRAG_GITHUB_ORGS and/or VIDRAG_ALLOWED_USERS."
            )
        c.GitHubOAuthenticator.allowed_organizations = set(opts.github_orgs)
        if opts.github_orgs:
            # private org and team membership is only visible with read:org
            c.GitHubOAuthenticator.scope = ["read:org"]
        c.GitHubOAuthenticator.custom_403_message = (
            "Your GitHub account is not allowed on this hub: it is not a member of "
            f"{', '.join(opts.github_orgs) or 'an allowed organization'} and not on the list of "
            "allowed users. Ask your instructor to add you, then log in again."
        )
    else:
        c.JupyterHub.authenticator_class = "hub_config.google_auth.VidragGoogleOAuthenticator"
        if not (opts.google_domains or opts.allowed_users or admins):
            raise ValueError(
                "VIDRAG_AUTH=google lets nobody in: set VIDRAG_GOOGLE_DOMAINS and/or VIDRAG_ALLOWED_USERS."
            )
        c.GoogleOAuthenticator.hosted_domain = list(opts.google_domains)
        # verified accounts of these domains get in; allowed_users narrows it to a list
        c.VidragGoogleOAuthenticator.allow_hosted_domains = not opts.allowed_users
        c.GoogleOAuthenticator.custom_403_message = (
            "Your Google account is not allowed on this hub: it is not in "
            f"{', '.join(opts.google_domains) or 'an allowed domain'} and not on the list of "
            "allowed users. Log in with your school account, or ask your instructor."
        )

c.Authenticator.admin_users = set(admins)

# --------------------------------------------------------- servers: spawner and landing
# Users land on the vidrag dashboard (Voila) in their own server; JupyterLab is at /lab.
c.Spawner.default_url = landing_path(opts)
c.Spawner.env_keep.extend(kernel_setting_names())
# loading a Lab + Voila server on a small machine can take a while
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
# A file uploaded in the Voila dashboard reaches the kernel as one websocket message
# (base64); Jupyter's default limit of 10 MiB would cut the upload limit to ~7 MB. The
# single-user image installs hub_config/docker/jupyter_server_config.json, which raises
# it; servers started from elsewhere get the same setting on their command line. The
# landing dashboard's page comes from a pre-heated Voila kernel (VIDRAG_PREHEAT_KERNELS).
_server_config = json.loads(SERVER_CONFIG_FILE.read_text())
_tornado = json.dumps(_server_config["ServerApp"]["tornado_settings"])
c.Spawner.args = [f"--ServerApp.tornado_settings={_tornado}", *preheat_args(opts)]

if opts.spawner == "local":
    # Servers run as the hub's own user, from the hub's Python, one folder per user.
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    if os.geteuid() == 0:
        # local servers run as the hub's user; Jupyter refuses root unless told it is meant
        c.Spawner.args.append("--ServerApp.allow_root=True")
else:
    # One container per user (pip install dockerspawner); see hub_config/docker/.
    c.JupyterHub.spawner_class = "docker"
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.hub_connect_ip = os.environ.get("VIDRAG_HUB_CONNECT_IP", "jupyterhub")
    c.DockerSpawner.image = opts.docker_image
    c.DockerSpawner.network_name = opts.docker_network
    c.DockerSpawner.remove = True
    c.DockerSpawner.notebook_dir = "/home/jovyan"
    c.DockerSpawner.volumes = {
        "vidrag-user-{username}": "/home/jovyan",
        opts.shared_volume: {"bind": "/srv/vidrag/shared", "mode": "ro"},
    }
    c.DockerSpawner.mem_limit = opts.mem_limit
    c.DockerSpawner.cpu_limit = opts.cpu_limit
    c.DockerSpawner.post_start_cmd = (
        "sh -c 'mkdir -p ~/vidrag && cp -f /opt/vidrag/dashboards/*.ipynb ~/vidrag/'"
    )
    c.DockerSpawner.environment = {"VIDRAG_HOME": "/home/jovyan/.vidrag", "VIDRAG_USER": "{username}"}

# -------------------------------------------------------------------- groups and roles
c.JupyterHub.load_groups = {
    "instructors": {"users": list(instructors)},
    **{name: {"users": list(members)} for name, members in course_groups.items()},
}

# --------------------------------------------------------------------------- services
services = _as_list(c.JupyterHub.services)
roles = _as_list(c.JupyterHub.load_roles)

if opts.idle_timeout > 0:
    services.append(
        {
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={opts.idle_timeout}"],
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "description": "Stop servers idle for VIDRAG_IDLE_TIMEOUT seconds",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )

if opts.service_enabled and not any(s.get("name") == opts.service_name for s in services):
    # The service runs beside the hub as a managed process; the proxy forwards
    # /services/<name>/ to it. It gets the kernel's deployment-wide settings (LLM keys
    # stay in the service), and the shared data root it alone writes.
    _port = opts.service_port or free_port()
    _service_env = {k: v for k, v in os.environ.items() if k in kernel_setting_names()}
    _service_env["VIDRAG_SHARED_ROOT"] = os.environ.get("VIDRAG_SHARED_ROOT") or str(
        opts.home_path / "shared"
    )
    for _name in (
        "VIDRAG_SHARED_DATABASE_URL",
        "VIDRAG_CREATORS_GROUP",
        "VIDRAG_TOKEN_CACHE_SECONDS",
        "VIDRAG_INGEST_WORKERS",
    ):
        if os.environ.get(_name):
            _service_env[_name] = os.environ[_name]
    # Browser logins to the service (the join page, the player's media): the session
    # cookie's secret is kept beside the hub's, so a restart does not log everyone out;
    # a joined user is sent to the chat dashboard through the hub (which starts their server).
    _service_env["VIDRAG_COOKIE_SECRET"] = os.environ.get("VIDRAG_COOKIE_SECRET") or _secret_file(
        opts.hub_state_dir / "vidrag-cookie-secret"
    )
    # scheduled runs carry tokens the service signed: a restart mid-run must not void them
    _service_env["VIDRAG_RUN_TOKEN_SECRET"] = os.environ.get("VIDRAG_RUN_TOKEN_SECRET") or _secret_file(
        opts.hub_state_dir / "vidrag-run-token-secret"
    )
    _service_env["VIDRAG_CHAT_URL"] = "/hub/user-redirect" + landing_path(opts)
    # the plans (c.VidragPlans, hub_config/plans.py) travel to the service as one JSON variable
    _service_env["VIDRAG_PLANS"] = VidragPlans(config=c).to_json()
    services.append(
        {
            "name": opts.service_name,
            "url": f"http://127.0.0.1:{_port}",
            "command": [sys.executable, "-m", "vidrag_hub"],
            "environment": _service_env,
            # the hub registers the service's OAuth client itself: client id
            # service-<name>, redirect URI /services/<name>/oauth_callback (handed to the
            # service as JUPYTERHUB_CLIENT_ID, JUPYTERHUB_OAUTH_CALLBACK_URL). Part of the
            # hub, so no consent page between a student and a share link.
            "oauth_no_confirm": True,
        }
    )

# The vidrag service registers itself here, as {"name": opts.service_name, ...}, once it
# exists. Everything below follows from its presence: users and their servers' tokens may
# call it (and nothing more), it may read users and groups, and servers learn its URL.
vidrag_service = next((s for s in services if s.get("name") == opts.service_name), None)
service_scopes = []
service_env: dict[str, str] = {}
if vidrag_service is not None:
    service_scopes = [f"access:services!service={opts.service_name}"]
    service_env = {
        "VIDRAG_SERVICE_NAME": opts.service_name,
        "VIDRAG_SERVICE_URL": opts.service_url
        or vidrag_service.get("url")
        or f"{opts.public_url}/services/{opts.service_name}/",
    }
    roles.append(
        {
            "name": "vidrag-service",
            "description": "What the vidrag service needs: who users are and which groups they are in",
            "scopes": ["read:users", "read:groups"],
            "services": [opts.service_name],
        }
    )

roles += [
    {"name": "user", "description": "Standard user privileges", "scopes": ["self", *service_scopes]},
    {
        # what $JUPYTERHUB_API_TOKEN in a user's server may do: report activity, let its
        # owner in, and call the vidrag service
        "name": "server",
        "description": "A user's server: post activity, call the vidrag service",
        "scopes": ["users:activity!user", "access:servers!server", *service_scopes],
    },
    {
        "name": "instructor",
        "description": "Instructors see users and course rosters (groups)",
        "scopes": ["list:users", "read:users:name", "read:users:activity", "list:groups", "read:groups"],
        "groups": ["instructors"],
    },
]
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles

if opts.spawner == "local":
    c.Spawner.pre_spawn_hook = local_pre_spawn_hook(opts, service_env)
else:
    c.DockerSpawner.environment = {**c.DockerSpawner.environment, **service_env}
