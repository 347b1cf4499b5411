"""The whole workbench: tabs for the collection manager and the chat, room for more.

``WorkbenchApp`` is what Voila and notebooks display (a plain layout: templates do not
render inside notebooks) and what ``template()`` wraps for ``panel serve``. The hub
service will add sharing, usage and billing panels with ``add_tab``; the header has room
for links (``Open JupyterLab``) and the sidebar of the served template for account items.
"""

from __future__ import annotations

import os

import panel as pn

from . import notebook_comms
from .chat_panel import ChatPanel
from .collection_manager import CollectionManager
from .format import esc
from .state import AppState

TITLE = "vidrag"
#: Panel extensions the components need; call ``pn.extension(*EXTENSIONS)`` before building.
EXTENSIONS = ("tabulator",)

VIEWPORT = "width=device-width, initial-scale=1"

CSS = """
.vidrag-plan-table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.vidrag-plan-table th, .vidrag-plan-table td { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left; }
"""


def jupyterlab_url() -> str:
    """Where JupyterLab is for this server (under JupyterHub: the user's prefix)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/") + "/lab"


class WorkbenchApp(pn.viewable.Viewer):
    """Collections and Chat as tabs, sharing one :class:`AppState`."""

    def __init__(
        self, wb=None, *, state: AppState | None = None, links: dict | None = None, **params
    ) -> None:
        super().__init__(**params)
        self.state = state or AppState(wb)
        self.manager = CollectionManager(self.state)
        self.chat = ChatPanel(self.state)
        self.tabs = pn.Tabs(
            ("Chat", self.chat), ("Collections", self.manager), dynamic=False, sizing_mode="stretch_width"
        )
        self.links = pn.pane.HTML(self._links_html(links or {}), sizing_mode="stretch_width", margin=(0, 5))
        self._layout = pn.Column(self.links, self.tabs, sizing_mode="stretch_width")
        self.state.start()

    def __panel__(self):
        return self._layout

    @staticmethod
    def _links_html(links: dict) -> str:
        return " · ".join(
            f'<a href="{esc(url)}" target="_blank">{esc(name)}</a>' for name, url in links.items()
        )

    def add_tab(self, name: str, panel) -> None:
        """Add a panel as a tab (the hub's Sharing, Usage and Billing panels go here)."""
        self.tabs.append((name, panel))

    def template(self, title: str = TITLE) -> pn.template.BaseTemplate:
        """A served page: the app in the main area, the sidebar left for account items."""
        tmpl = pn.template.FastListTemplate(
            title=title,
            main=[self],
            sidebar=[pn.pane.Markdown("Ask questions of lecture videos, with citations to the second.")],
            collapsed_sidebar=True,
            main_layout=None,
            raw_css=[CSS],
            meta_viewport=VIEWPORT,
        )
        return tmpl


def _extension() -> None:
    """Load Panel's extensions; in a notebook, inline BokehJS and Panel's JS rather than fetch
    them from a CDN (hub servers often cannot reach one, and then nothing renders); likewise
    its stylesheets, and keep jupyter_bokeh's late echoes from undoing the kernel's changes
    (``notebook_comms``)."""
    pn.extension(*EXTENSIONS, inline=True, raw_css=[CSS])
    notebook_comms.install()


def _state(wb) -> AppState:
    state = AppState(wb)
    state.start()
    return state


def manager(wb=None) -> CollectionManager:
    """The collection manager on ``wb`` (default: the Workbench of the ``VIDRAG_*`` environment)."""
    _extension()
    return CollectionManager(_state(wb))


def chat(wb=None) -> ChatPanel:
    """The chat with its player on ``wb`` (default: the Workbench of the ``VIDRAG_*`` environment)."""
    _extension()
    return ChatPanel(_state(wb))


def workbench(wb=None, *, links: dict | None = None) -> WorkbenchApp:
    """Chat and Collections tabs on ``wb``; ``links`` (name → URL) show above the tabs."""
    _extension()
    return WorkbenchApp(wb, links=links)
