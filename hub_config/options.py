"""The deployment's options: one traitlets class, each option read from a ``VIDRAG_*`` variable.

``jupyterhub_config.py`` builds a :class:`VidragHubOptions` and turns it into JupyterHub,
authenticator and spawner settings. An option is taken, in order, from
``c.VidragHubOptions.<name>`` in a config file, from its environment variable, or from its
default. ``python -m hub_config.options`` prints every option with its help.

OAuth client secrets are deliberately not options: they are read from the environment
only (``OAUTH_CLIENT_SECRET``), so they never land in a file or a help dump.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from traitlets import Bool, CaselessStrEnum, Dict, Float, Integer, List, Unicode, default
from traitlets.config import Configurable

#: The repository checkout this configuration lives in (the demo's code and data root).
REPO_ROOT = Path(__file__).resolve().parent.parent


def _split(value: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,\s]+", value) if item.strip()]


def _groups(value: str) -> dict[str, list[str]]:
    """``"cs101=alice,bob; cs102=carol"`` -> ``{"cs101": ["alice", "bob"], "cs102": ["carol"]}``."""
    groups: dict[str, list[str]] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        name, sep, members = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"course group {part.strip()!r} should look like name=user1,user2")
        groups[name.strip()] = _split(members)
    return groups


def is_loopback(host: str) -> bool:
    """True only for an address (or name) that stays on this machine; '' (all interfaces) is not."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a service whose port is not configured), and
    never one this process was given before: the kernel may offer a port again as soon as
    the probing socket closes, and two ports asked for in a row once came out equal (the
    proxy's public and API ports, in a CI run: EADDRINUSE)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class VidragHubOptions(Configurable):
    """How vidrag's JupyterHub is deployed: login, addresses, spawner, groups, services."""

    auth = CaselessStrEnum(
        ["github", "google", "demo"],
        default_value="demo",
        config=True,
        help="""VIDRAG_AUTH: how people log in. `github` (GitHubOAuthenticator), `google`
        (GoogleOAuthenticator) or `demo` (two local demo users with one password; refused
        unless the hub binds a loopback address).""",
    ).tag(env="VIDRAG_AUTH")

    home = Unicode(
        config=True,
        help="""VIDRAG_HOME: the data root. Hub state lives in `<home>/hub/`, each user's
        personal vidrag data in `<home>/users/<name>/`. Default: `.vidrag/` in the repository.""",
    ).tag(env="VIDRAG_HOME")

    @default("home")
    def _home_default(self) -> str:
        return str(REPO_ROOT / ".vidrag")

    hub_ip = Unicode(
        "127.0.0.1",
        config=True,
        help="""VIDRAG_HUB_IP: the public address the proxy listens on. Use 0.0.0.0 (or ''
        for all interfaces) only behind TLS, and never with the demo login.""",
    ).tag(env="VIDRAG_HUB_IP")

    hub_port = Integer(8000, config=True, help="VIDRAG_HUB_PORT: the public port.").tag(env="VIDRAG_HUB_PORT")

    hub_api_port = Integer(
        8081, config=True, help="VIDRAG_HUB_API_PORT: the hub's internal API port (127.0.0.1)."
    ).tag(env="VIDRAG_HUB_API_PORT")

    proxy_api_port = Integer(
        8001, config=True, help="VIDRAG_PROXY_API_PORT: configurable-http-proxy's API port (127.0.0.1)."
    ).tag(env="VIDRAG_PROXY_API_PORT")

    db_url = Unicode(
        "",
        config=True,
        help="""VIDRAG_HUB_DB_URL: the hub's database (SQLAlchemy URL). Default: SQLite in
        `<home>/hub/jupyterhub.sqlite`; use PostgreSQL when the hub is not on one machine.""",
    ).tag(env="VIDRAG_HUB_DB_URL")

    admin_users = List(
        Unicode(),
        config=True,
        help="VIDRAG_ADMIN_USERS: hub administrators (comma-separated). Default in demo mode: instructor.",
    ).tag(env="VIDRAG_ADMIN_USERS")

    allowed_users = List(
        Unicode(),
        config=True,
        help="""VIDRAG_ALLOWED_USERS: users allowed in by name (comma-separated GitHub logins
        or Google usernames), in addition to organization or domain rules.""",
    ).tag(env="VIDRAG_ALLOWED_USERS")

    instructors = List(
        Unicode(),
        config=True,
        help="""VIDRAG_INSTRUCTORS: members of the `instructors` group (comma-separated). The
        group's role lets them read users and course groups. Default in demo mode: instructor.""",
    ).tag(env="VIDRAG_INSTRUCTORS")

    course_groups = Dict(
        value_trait=List(Unicode()),
        config=True,
        help="""VIDRAG_COURSE_GROUPS: course rosters as JupyterHub groups, e.g.
        `cs101=alice,bob;cs102=carol`. Groups are only added to at start-up (JupyterHub
        semantics); remove members through the admin page or the REST API.""",
    ).tag(env="VIDRAG_COURSE_GROUPS")

    github_orgs = List(
        Unicode(),
        config=True,
        help="""VIDRAG_GITHUB_ORGS: GitHub organizations (`org`) or teams (`org:team`) whose
        members may log in (comma-separated). Needs the `read:org` scope, which is then requested.""",
    ).tag(env="VIDRAG_GITHUB_ORGS")

    google_domains = List(
        Unicode(),
        config=True,
        help="""VIDRAG_GOOGLE_DOMAINS: Google Workspace domains (the `hd` claim) whose users
        with a verified email may log in (comma-separated). With one domain, usernames drop it.""",
    ).tag(env="VIDRAG_GOOGLE_DOMAINS")

    oauth_client_id = Unicode(
        "", config=True, help="OAUTH_CLIENT_ID: the OAuth app's client id (GitHub or Google)."
    ).tag(env="OAUTH_CLIENT_ID")

    oauth_callback_url = Unicode(
        "",
        config=True,
        help="""OAUTH_CALLBACK_URL: the callback registered with the OAuth app, e.g.
        `https://hub.example.edu/hub/oauth_callback`.""",
    ).tag(env="OAUTH_CALLBACK_URL")

    demo_users = List(
        Unicode(),
        default_value=["instructor", "student"],
        config=True,
        help="VIDRAG_DEMO_USERS: the demo login's users (comma-separated).",
    ).tag(env="VIDRAG_DEMO_USERS")

    demo_password = Unicode(
        "",
        config=True,
        help="""VIDRAG_DEMO_PASSWORD: the demo users' password. `make run` generates one per
        data root (kept in `<home>/demo-password`) unless this is set.""",
    ).tag(env="VIDRAG_DEMO_PASSWORD")

    spawner = CaselessStrEnum(
        ["local", "docker"],
        default_value="local",
        config=True,
        help="""VIDRAG_SPAWNER: `local` runs each server as a process of the hub's user (demo,
        one machine); `docker` runs each in a container (needs `dockerspawner`). On
        Kubernetes, Zero to JupyterHub's KubeSpawner is configured by
        `hub_config/z2jh-values.yaml` instead.""",
    ).tag(env="VIDRAG_SPAWNER")

    docker_image = Unicode(
        "vidrag-singleuser:latest",
        config=True,
        help="VIDRAG_DOCKER_IMAGE: the single-user image for the docker spawner (see hub_config/docker/).",
    ).tag(env="VIDRAG_DOCKER_IMAGE")

    docker_network = Unicode(
        "vidrag",
        config=True,
        help="VIDRAG_DOCKER_NETWORK: the docker network shared by the hub and the servers.",
    ).tag(env="VIDRAG_DOCKER_NETWORK")

    shared_volume = Unicode(
        "vidrag-shared",
        config=True,
        help="""VIDRAG_SHARED_VOLUME: the docker volume holding the service's shared data
        root; mounted read-only at /srv/vidrag/shared in each server (the service is its only writer).""",
    ).tag(env="VIDRAG_SHARED_VOLUME")

    mem_limit = Unicode(
        "4G", config=True, help="VIDRAG_MEM_LIMIT: memory limit per server (containers)."
    ).tag(env="VIDRAG_MEM_LIMIT")

    cpu_limit = Float(2.0, config=True, help="VIDRAG_CPU_LIMIT: CPU limit per server (containers).").tag(
        env="VIDRAG_CPU_LIMIT"
    )

    idle_timeout = Integer(
        3600,
        config=True,
        help="""VIDRAG_IDLE_TIMEOUT: seconds of inactivity after which jupyterhub-idle-culler
        stops a server; 0 turns the culler off.""",
    ).tag(env="VIDRAG_IDLE_TIMEOUT")

    service_name = Unicode(
        "vidrag",
        config=True,
        help="""VIDRAG_SERVICE_NAME: the vidrag service's name in `c.JupyterHub.services`. When a
        service of this name is registered, users' server tokens may call it and nothing else.""",
    ).tag(env="VIDRAG_SERVICE_NAME")

    service_url = Unicode(
        "",
        config=True,
        help="""VIDRAG_SERVICE_URL: the URL servers use to reach the vidrag service. Default:
        the service's registered `url`, else `/services/<name>/` on the public address.""",
    ).tag(env="VIDRAG_SERVICE_URL")

    service_enabled = Bool(
        False,
        config=True,
        help="""VIDRAG_SERVICE_ENABLED: register and start the vidrag service (`python -m
        vidrag_hub`) as a hub-managed service on a loopback port. `make run` turns it on.""",
    ).tag(env="VIDRAG_SERVICE_ENABLED")

    service_port = Integer(
        0,
        config=True,
        help="""VIDRAG_SERVICE_PORT: the loopback port the vidrag service listens on; 0 picks a
        free port when the hub starts.""",
    ).tag(env="VIDRAG_SERVICE_PORT")

    dashboards_dir = Unicode(
        config=True,
        help="""VIDRAG_DASHBOARDS_DIR: the folder of Voila notebooks linked into each user's
        server as `vidrag/` (local spawner). Default: the repository's `dashboards/`.""",
    ).tag(env="VIDRAG_DASHBOARDS_DIR")

    @default("dashboards_dir")
    def _dashboards_dir_default(self) -> str:
        return str(REPO_ROOT / "dashboards")

    landing_notebook = Unicode(
        "workbench.ipynb",
        config=True,
        help="VIDRAG_LANDING_NOTEBOOK: the dashboard people land on after login (in `vidrag/`).",
    ).tag(env="VIDRAG_LANDING_NOTEBOOK")

    land_on_dashboard = Bool(
        True,
        config=True,
        help="""VIDRAG_LAND_ON_DASHBOARD: open the Voila dashboard after login (true) or
        JupyterLab (false). JupyterLab stays one click away at /user/<name>/lab either way.""",
    ).tag(env="VIDRAG_LAND_ON_DASHBOARD")

    preheat_kernels = Integer(
        1,
        config=True,
        help="""VIDRAG_PREHEAT_KERNELS: Voila kernels each user's server keeps started, with
        the landing dashboard's imports done, for the next visit to it (the page then shows
        in about a second instead of several); each costs a kernel's memory (a few hundred
        MB). 0 starts a kernel per visit.""",
    ).tag(env="VIDRAG_PREHEAT_KERNELS")

    def __init__(self, environ: Mapping[str, str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        env = os.environ if environ is None else environ
        configured = set(self.config.get(type(self).__name__, {}))
        for name, trait in self.traits(env=lambda v: v is not None).items():
            raw = env.get(trait.metadata["env"], "")
            if name in configured or raw.strip() == "":
                continue
            try:
                setattr(self, name, self._parse(trait, raw.strip()))
            except Exception as exc:
                raise ValueError(f"{trait.metadata['env']}={raw!r} is not valid: {exc}") from exc

    @staticmethod
    def _parse(trait, raw: str):
        if isinstance(trait, Dict):
            return _groups(raw)
        if isinstance(trait, List):
            return _split(raw)
        if isinstance(trait, Bool):
            return raw.lower() in {"1", "true", "yes", "on"}
        return trait.from_string(raw)

    @property
    def home_path(self) -> Path:
        """The data root as an absolute path."""
        return Path(self.home).expanduser().resolve()

    @property
    def hub_state_dir(self) -> Path:
        """Where the hub keeps its database, cookie secret and proxy token."""
        return self.home_path / "hub"

    @property
    def users_dir(self) -> Path:
        """Parent of every user's personal data directory."""
        return self.home_path / "users"

    @property
    def public_url(self) -> str:
        """The address people (and local servers) reach the proxy at."""
        host = self.hub_ip if self.hub_ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.hub_port}"


def main() -> None:
    """Print every option with its environment variable and help."""
    VidragHubOptions.class_print_help()


if __name__ == "__main__":
    main()
