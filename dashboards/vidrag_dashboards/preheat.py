"""Voilà's pre-heated kernels inside a Jupyter server, for the dashboards people land on.

Voilà 0.5 pre-heats kernels only when it runs as its own app (``voila --preheat_kernel``):
there its ``VoilaKernelManager`` (``voila/voila_kernel_manager.py``) wraps the app's kernel
manager, and the page handler takes a page's kernel, notebook already executed, from its
pool. As a jupyter-server extension, which is how a JupyterHub user's server runs it
(``/user/<name>/voila/render/...``), the handler asks the *server's* kernel manager for a
pool, finds none (``except AttributeError: # For server extension case`` in
``voila/handler.py``) and starts a cold kernel: ``VoilaConfiguration.preheat_kernel`` does
nothing there, and each visit waits for a new kernel to import Panel and build the page.

This module gives the server what the handler looks for:

- :class:`PreheatKernelManager` is Voilà's own ``VoilaKernelManager`` on the server's
  ``AsyncMappingKernelManager``, set as ``ServerApp.kernel_manager_class``. It pools only
  the notebooks in ``PreheatKernelManager.notebooks`` (Voilà's app pools every notebook
  under its root, which in a user's server would be all of their notebooks), with
  ``VoilaConfiguration.default_pool_size`` kernels each, and takes the server's address,
  templates and settings from the server app rather than from Voilà's app.
- the extension (``ServerApp.jpserver_extensions``) registers Voilà's request-info
  websocket, ``/voila/query/<kernel id>``, which its standalone app has and its server
  extension lacks. A pooled kernel runs the notebook up to
  :func:`vidrag_dashboards.warmup.wait_for_visitor` and waits there; when a page takes the
  kernel, the handler sends the visitor's request (query string, path) down this socket.
  Only the server's own pooled kernels may read it: they carry a per-server key
  (``VIDRAG_PREHEAT_KEY``), checked before the socket opens.
- once the server's event loop runs, it fills the pools.

``hub_config.spawning.preheat_args`` turns it all on for users' servers.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import secrets

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from traitlets import Float, List, Unicode
from voila.notebook_renderer import NotebookRenderer
from voila.paths import collect_template_paths
from voila.request_info_handler import RequestInfoSocketHandler
from voila.utils import ENV_VARIABLE, get_page_config
from voila.voila_kernel_manager import voila_kernel_manager_factory, wait_before

from .warmup import KEY_HEADER, KEY_VARIABLE

#: A kernel id, as Voilà's server extension matches it.
_KERNEL_ID = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"

_VoilaPool = voila_kernel_manager_factory(AsyncMappingKernelManager, True, 0)


class PreheatKernelManager(_VoilaPool):
    """The server's kernel manager, with Voilà's pools of pre-heated kernels for some notebooks."""

    notebooks = List(
        Unicode(),
        config=True,
        help="""Notebooks (paths from the server's root, as in /voila/render/<path>) whose
        pages get pre-heated kernels; every other notebook starts a kernel per visit.""",
    )

    fill_delay = Float(
        10.0,
        config=True,
        help="""Seconds before a pool refills after a page took its kernel. The new kernel
        imports and runs the notebook, several CPU-seconds: later than Voilà's 1 s, so it
        does not compete with the visitor's first question on a small machine.""",
    )

    def __init__(self, **kwargs) -> None:
        # Past VoilaKernelManager.__init__: it reads the standalone app's notebook_path and
        # starts a pool for every notebook under the root before any event loop runs.
        super(_VoilaPool, self).__init__(**kwargs)
        self._wait_at_startup = True
        self.notebook_data: dict = {}
        self._pools: dict[str, list[asyncio.Task]] = {}
        self._ready_at: dict[asyncio.Task, float] = {}  # event-loop time a pooled start begins
        self.notebook_path = None
        self.pool_size = 0
        self._server = None
        self._voila = None
        self._template_paths: list[str] = []
        self._kernel_env: dict[str, str] = {}

    def attach(self, server_app, voila_configuration, template_paths: list[str], key: str) -> None:
        """Take what Voilà's app would provide from the running server (called by the extension)."""
        self._server = server_app
        self._voila = voila_configuration
        self._template_paths = template_paths
        self.pool_size = max(voila_configuration.default_pool_size, 0)
        base_url = server_app.base_url
        self._kernel_env = {
            ENV_VARIABLE.VOILA_PREHEAT: "True",
            ENV_VARIABLE.VOILA_BASE_URL: base_url,
            ENV_VARIABLE.VOILA_SERVER_URL: base_url,
            ENV_VARIABLE.VOILA_APP_IP: _connect_host(server_app.ip),
            ENV_VARIABLE.VOILA_APP_PORT: str(server_app.port),
            ENV_VARIABLE.VOILA_WS_PROTOCOL: "wss" if server_app.certfile else "ws",
            KEY_VARIABLE: key,
        }

    def fill_pools(self) -> None:
        """Start the kernels of every configured notebook's pool (on the running event loop)."""
        for notebook in self.notebooks:
            self.fill_if_needed(delay=0, notebook_name=notebook)

    def fill_if_needed(
        self,
        delay: float | None = None,
        notebook_name: str | None = None,
        extra_kernel_env_variables=None,
        **kwargs,
    ) -> None:
        """Start kernels until ``notebook_name``'s pool is full, after ``delay`` seconds
        (``fill_delay`` when None). Voilà's own reads the standalone app's attributes
        (``server_url``, ``port``) from its parent, which a Jupyter server does not have;
        and the visitor's URL it passes on would be stale in the next kernel, so it is dropped."""
        if self._server is None or notebook_name not in self.notebooks:
            return
        delay = self.fill_delay if delay is None else delay
        pool = self._pools.setdefault(notebook_name, [])
        kwargs["env"] = {**os.environ, **kwargs.get("env", {}), **self._kernel_env}
        kwargs.setdefault("path", os.path.dirname(notebook_name))
        loop = asyncio.get_event_loop()
        for _ in range(self.pool_size - len(pool)):
            task = loop.create_task(wait_before(delay, self._initialize(notebook_name, None, **kwargs)))
            self._ready_at[task] = loop.time() + delay
            pool.append(task)

    def get_pool_size(self, notebook_name: str) -> int:
        """Kernels started (or starting) for ``notebook_name``, the page handler's question.

        A refill still in its ``fill_delay`` does not count: a second visitor within that
        time gets a new kernel at once rather than wait out the delay first. A start that
        failed is dropped and logged, so the handler starts a new kernel instead of failing."""
        self._prune()
        now = asyncio.get_event_loop().time()
        return sum(1 for task in self._pools.get(notebook_name, []) if self._ready_at.get(task, 0) <= now)

    async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):
        # Voilà's looks through the pools with task.result(), which raises for a failed start
        self._prune()
        return await super().shutdown_kernel(kernel_id, *args, **kwargs)

    def _prune(self) -> None:
        pooled = {task for pool in self._pools.values() for task in pool}
        self._ready_at = {task: t for task, t in self._ready_at.items() if task in pooled}
        for notebook, pool in self._pools.items():
            for task in [t for t in pool if t.done() and (t.cancelled() or t.exception() is not None)]:
                pool.remove(task)
                self.log.warning(
                    "A pre-heated kernel for %s failed to start: %s",
                    notebook,
                    "cancelled" if task.cancelled() else repr(task.exception()),
                )

    def _notebook_renderer_factory(self, notebook_path: str | None = None) -> NotebookRenderer:
        # What voila.handler.VoilaHandler builds for a page, from the server's settings.
        server, voila = self._server, self._voila
        settings = server.web_app.settings
        page_kwargs = {
            "base_url": server.base_url,
            "settings": settings,
            "log": self.log,
            "voila_configuration": voila,
        }
        page_config = get_page_config(**page_kwargs)
        if voila.page_config_hook:
            page_config = voila.page_config_hook(page_config, **page_kwargs, notebook_path=notebook_path)
        return NotebookRenderer(
            voila_configuration=voila,
            traitlet_config=server.config,
            notebook_path=notebook_path,
            template_paths=self._template_paths,
            config_manager=settings["config_manager"],
            contents_manager=settings["contents_manager"],
            base_url=server.base_url,
            kernel_spec_manager=settings["kernel_spec_manager"],
            page_config=page_config,
            mathjax_config=settings.get("mathjax_config"),
            mathjax_url=settings.get("mathjax_url"),
        )


def _connect_host(ip: str) -> str:
    """Where a kernel on this machine reaches the server: its address, or loopback when it
    listens on every interface (or on a name)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "127.0.0.1"
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return str(address) if address.version == 4 else f"[{address}]"


class RequestInfoHandler(RequestInfoSocketHandler):
    """Voilà's request-info socket, open only to a kernel holding this server's key.

    Unguarded (as in Voilà's app) anyone who learns a kernel id could read a visitor's
    query string, or connect first and leave the kernel waiting."""

    def initialize(self, key: str) -> None:
        self._key = key

    async def get(self, *args, **kwargs):
        if not hmac.compare_digest(self.request.headers.get(KEY_HEADER, ""), self._key):
            self.set_status(403)
            self.finish("Forbidden")
            return None
        return await super().get(*args, **kwargs)


def _voila_configuration(server_app):
    """Voilà's configuration as its server extension builds it (server config, then voila.json/.py)."""
    from voila.configuration import VoilaConfiguration
    from voila.server_extension import load_config_file

    config = VoilaConfiguration(parent=server_app)
    local = load_config_file()
    if local is not None:
        config.update_config(local)
    return config


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "vidrag_dashboards.preheat"}]


def _load_jupyter_server_extension(server_app) -> None:
    """Register the request-info socket and hand the kernel manager what it needs, if pre-heating is on."""
    km = server_app.kernel_manager
    voila = _voila_configuration(server_app)
    if not voila.preheat_kernel:
        return
    if not isinstance(km, PreheatKernelManager):
        server_app.log.warning(
            "VoilaConfiguration.preheat_kernel is on, but ServerApp.kernel_manager_class is %s: "
            "set it to vidrag_dashboards.preheat.PreheatKernelManager for pre-heated kernels",
            type(km).__name__,
        )
        return
    if voila.progressive_rendering or voila.prelaunch_hook:
        # Voilà's app refuses these together with preheat_kernel; here the pages still work, cold
        server_app.log.warning("Voilà's progressive_rendering and prelaunch_hook rule out pre-heated kernels")
        return
    key = secrets.token_urlsafe(32)
    km.attach(server_app, voila, collect_template_paths(["voila", "nbconvert"], voila.template), key)
    route = url_path_join(server_app.web_app.settings["base_url"], rf"/voila/query/{_KERNEL_ID}")
    server_app.web_app.add_handlers(".*$", [(route, RequestInfoHandler, {"key": key})])
    server_app.log.info(
        "Pre-heated Voilà kernels: %d for each of %s", km.pool_size, ", ".join(km.notebooks) or "no notebook"
    )


async def _start_jupyter_server_extension(server_app) -> None:
    """Fill the pools once the server's event loop runs."""
    km = server_app.kernel_manager
    if isinstance(km, PreheatKernelManager) and km._server is not None:
        km.fill_pools()
