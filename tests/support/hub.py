"""Run the real JupyterHub (vidrag's configuration + configurable-http-proxy) on 127.0.0.1.

A :class:`Hub` starts ``jupyterhub -f hub_config/jupyterhub_config.py`` in its own process
group on free loopback ports, with a ``VIDRAG_HUB_EXTRA_CONFIG`` file that adds a
``test-admin`` service whose token drives the REST API. Stopping it checks that the proxy
and every single-user server went away with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from hub_config.options import free_port  # the one port picker (tests import it from here too)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"
NODE_BIN = REPO / "node_modules" / ".bin"


def hub_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for the hub: the data root, free ports, the proxy on PATH, offline models."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDRAG_", "OAUTH_", "JUPYTERHUB_"))}
    env.update(
        PATH=f"{NODE_BIN}:{Path(sys.executable).parent}:{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        VIDRAG_HOME=str(home),
        VIDRAG_HUB_IP="127.0.0.1",
        VIDRAG_HUB_PORT=str(free_port()),
        VIDRAG_HUB_API_PORT=str(free_port()),
        VIDRAG_PROXY_API_PORT=str(free_port()),
    )
    # the suite's speech model (tests/conftest.py pins tiny.en) for the hub's servers and seeds too
    if os.environ.get("VIDRAG_WHISPER_MODEL"):
        env["VIDRAG_WHISPER_MODEL"] = os.environ["VIDRAG_WHISPER_MODEL"]
    env.update(extra)
    return env


@dataclass
class Hub:
    """One JupyterHub process tree; ``start()``, use, ``stop()``."""

    root: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    #: Python for the VIDRAG_HUB_EXTRA_CONFIG file vidrag's config loads first (e.g. services).
    extra_config: str = ""
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The public (proxy) URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.env['VIDRAG_HUB_PORT']}"

    @property
    def log_path(self) -> Path:
        return self.root / "jupyterhub.log"

    def log(self) -> str:
        """Everything the hub, proxy and servers wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60) -> Hub:
        """Start the hub and wait until its API answers through the proxy."""
        self.root.mkdir(parents=True, exist_ok=True)
        extra = self.root / "test_extra_config.py"
        extra.write_text(
            "c = get_config()  # noqa\n"
            f"{self.extra_config}\n"
            "c.JupyterHub.services.append("
            f"{{'name': 'test-admin', 'api_token': {self.admin_token!r}}})\n"
            "c.JupyterHub.load_roles.append({'name': 'test-admin', 'services': ['test-admin'], 'scopes': "
            "['admin:users', 'admin:servers', 'access:servers', 'tokens', 'list:users', "
            "'list:groups', 'read:groups', 'read:roles', 'list:services', 'read:services']})\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG), *self.args],
            cwd=self.root,
            env={**self.env, "VIDRAG_HUB_EXTRA_CONFIG": str(extra)},
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # the hub died starting up: its proxy (same process group) would outlive it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"jupyterhub did not answer in {timeout}s:\n{self.log()[-4000:]}")

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Call the hub's REST API (through the proxy) as the test-admin service."""
        headers = {"Authorization": f"token {self.admin_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)

    def wait_ready(self, username: str, timeout: float = 120) -> dict:
        """Wait until ``username``'s default server is ready; its server model."""
        start = time.monotonic()
        while time.monotonic() < start + timeout:
            model = self.api("GET", f"/users/{username}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            if not server and time.monotonic() > start + 5:
                # a spawn that failed leaves no server behind
                raise RuntimeError(f"{username}'s server is not starting:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"{username}'s server not ready in {timeout}s:\n{self.log()[-4000:]}")

    def processes(self) -> list[psutil.Process]:
        """The hub and everything it started that is still alive."""
        if self.proc is None:
            return []
        try:
            hub = psutil.Process(self.proc.pid)
            return [hub, *hub.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 120) -> list[str]:
        """SIGTERM the hub (it stops its proxy and servers); the command lines of any survivors.

        ``timeout`` covers JupyterHub's own shutdown: it stops each managed service in turn
        (SIGINT, 10 s, SIGTERM, 5 s, SIGKILL, 5 s: the idle culler, then the vidrag service),
        then every server the same way, so a slow but correct shutdown may take over 60 s.
        At 30 s and again at 60 s a clean-clone CI run (load 5) killed the hub while a
        server was still stopping and reported it and its kernels as left behind.

        Survivors are killed so a failing test leaves nothing behind, and returned so a
        test can assert there were none; then the hub's log tail is printed (a test's
        captured output), so a CI log shows which step of the shutdown was slow.
        """
        if self.proc is None:
            return []
        tree = self.processes()
        started, killed = time.monotonic(), False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        survivors = reap(tree)
        if survivors or killed:
            took = time.monotonic() - started
            print(f"--- the hub {'was killed' if killed else 'stopped'} after {took:.0f} s; its log's tail:")
            print(self.log()[-6000:])
        return survivors


def reap(tree: list[psutil.Process], grace: float = 5) -> list[str]:
    """Wait briefly for ``tree`` to be gone; kill what is left; the survivors' command lines."""
    _, alive = psutil.wait_procs(tree, timeout=grace)
    survivors = []
    for p in alive:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            survivors.append(" ".join(p.cmdline()))
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return survivors


def login_form(client: httpx.Client, base: str, username: str, password: str) -> httpx.Response:
    """Submit JupyterHub's login form (with its XSRF field) as a browser would; no redirects followed."""
    page = client.get(f"{base}/hub/login")
    match = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    data = {"username": username, "password": password, "_xsrf": match.group(1) if match else ""}
    return client.post(f"{base}/hub/login", data=data, follow_redirects=False)


def execute_in_kernel(
    base: str, username: str, token: str, kernel_id: str, code: str, timeout: float = 90
) -> str:
    """Run ``code`` in the running kernel ``kernel_id`` of ``username``'s server over its
    websocket; its stdout (a kernel error is a RuntimeError with the traceback)."""
    import websocket

    ws = websocket.create_connection(
        f"{base.replace('http', 'ws', 1)}/user/{username}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"],
        timeout=timeout,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": username,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = ws.recv()
            if isinstance(frame, bytes):
                # a message with binary buffers (Bokeh's patches from a Panel app in the
                # kernel); the replies to an execute_request carry none
                continue
            msg = json.loads(frame)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise TimeoutError(f"kernel did not finish in {timeout}s; output so far: {''.join(out)!r}")
    finally:
        ws.close()


def run_in_kernel(base: str, username: str, token: str, code: str, timeout: float = 90) -> str:
    """Start a kernel in ``username``'s server, run ``code`` in it, return stdout; the kernel
    is shut down afterwards."""
    headers = {"Authorization": f"token {token}"}
    server = f"{base}/user/{username}"
    kernel = httpx.post(f"{server}/api/kernels", headers=headers, json={}, timeout=60)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    try:
        return execute_in_kernel(base, username, token, kernel_id, code, timeout)
    finally:
        httpx.delete(f"{server}/api/kernels/{kernel_id}", headers=headers, timeout=30)


class StandInService:
    """A stand-in for the vidrag service on 127.0.0.1, doing what a hub service must do.

    For each request it asks the hub who the caller's token belongs to and answers 200 with
    the caller's name only if the token holds ``access:services!service=<name>``, 403
    otherwise: the check the real service makes with JupyterHub's ``HubAuth``.
    """

    def __init__(self, name: str = "vidrag", token: str | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        self.name = name
        self.token = token or secrets.token_hex(16)
        self.hub_api = ""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                caller = self.headers.get("Authorization", "")
                who: dict = {}
                if caller and service.hub_api:  # the hub's own health check carries no token
                    reply = httpx.get(
                        f"{service.hub_api}/user", headers={"Authorization": caller}, timeout=10
                    )
                    who = reply.json() if reply.status_code == 200 else {}
                allowed = f"access:services!service={service.name}" in who.get("scopes", [])
                body = json.dumps({"name": who.get("name")} if allowed else {"error": "forbidden"})
                self.send_response(200 if allowed else 403)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def registration(self) -> str:
        """Python for an extra config file registering this service with the hub."""
        return (
            "c.JupyterHub.services = [{"
            f"'name': {self.name!r}, 'url': {self.url!r}, 'api_token': {self.token!r}}}]"
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
