"""The vidrag service against a real JupyterHub, for tests.

``ServiceHub`` starts the real hub (``tests.support.hub.Hub``) with a ``vidrag`` service
entry whose token the test knows, creates users, groups and tokens through the hub's
REST API, and builds the service in-process with ``make_app`` against that hub's API.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

from tests.support.hub import Hub, free_port, hub_env
from tests.support.settings import make_settings

PASSWORD = "service-tests-password"


class ServiceHub:
    """A real hub with a ``vidrag`` service entry, and helpers to drive its REST API."""

    def __init__(
        self, root: Path, *, admins: tuple[str, ...] = ("ada",), start_service: bool = False
    ) -> None:
        self.root = root
        self.service_token = secrets.token_hex(16)
        self.service_port = free_port()
        # the app runs in-process (or on uvicorn once the hub is up): JupyterHub 6 waits a
        # service's `timeout` (30 s by default) for it at start, and only warns; 1 s is enough
        extra = (
            "c.JupyterHub.services = [{'name': 'vidrag', 'timeout': 1, "
            f"'url': 'http://127.0.0.1:{self.service_port}', 'api_token': {self.service_token!r}}}]"
        )
        # hub admins come from the configuration: the REST API cannot make one
        # the test-admin service of tests.support.hub also manages group membership
        extra += (
            "\nc.JupyterHub.load_roles.append({'name': 'test-groups', "
            "'services': ['test-admin'], 'scopes': ['admin:groups']})"
        )
        env = {
            "VIDRAG_AUTH": "demo",
            "VIDRAG_DEMO_PASSWORD": PASSWORD,
            "VIDRAG_ADMIN_USERS": ",".join(admins),
        }
        if start_service:
            # the hub registers and starts the real service itself
            extra = ""
            env.update(VIDRAG_SERVICE_ENABLED="true", VIDRAG_SERVICE_PORT=str(self.service_port))
        self.hub = Hub(root=root, env=hub_env(root / "data", **env), extra_config=extra)

    def start(self) -> ServiceHub:
        self.hub.start()
        return self

    def stop(self) -> list[str]:
        return self.hub.stop()

    @property
    def api_url(self) -> str:
        """The hub's own API address (what a managed service gets as JUPYTERHUB_API_URL)."""
        return f"http://127.0.0.1:{self.hub.env['VIDRAG_HUB_API_PORT']}/hub/api"

    def ok(self, method: str, path: str, **kwargs):
        reply = self.hub.api(method, path, **kwargs)
        assert reply.status_code < 300, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply.json() if reply.content else None

    def user(self, name: str) -> None:
        if self.hub.api("GET", f"/users/{name}").status_code == 404:
            self.ok("POST", f"/users/{name}")

    def group(self, name: str, users: list[str]) -> None:
        if self.hub.api("GET", f"/groups/{name}").status_code == 404:
            self.ok("POST", f"/groups/{name}", json={"users": users})
        else:
            self.ok("POST", f"/groups/{name}/users", json={"users": users})

    def ungroup(self, name: str, users: list[str]) -> None:
        self.ok("DELETE", f"/groups/{name}/users", json={"users": users})

    def token(self, user: str, scopes: list[str] | None = None) -> str:
        """A new API token of ``user`` (the user's own scopes unless ``scopes`` narrows them)."""
        body = {"note": "vidrag service tests"}
        if scopes is not None:
            body["scopes"] = scopes
        return self.ok("POST", f"/users/{user}/tokens", json=body)["token"]

    def settings(self, shared_root: Path, **overrides):
        """Service settings for an in-process app against this hub."""
        from vidrag_hub.settings import ServiceSettings

        return ServiceSettings(
            shared_root=shared_root,
            service_name="vidrag",
            hub_api_url=self.api_url,
            hub_api_token=self.service_token,
            kernel=make_settings(shared_root),
            **overrides,
        )


class Served:
    """The service app on uvicorn in a thread of the test process, on 127.0.0.1 (at the port
    the hub's proxy forwards ``/services/vidrag/`` to, so browsers reach it through the hub)."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="vidrag-service", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the service did not stop"
