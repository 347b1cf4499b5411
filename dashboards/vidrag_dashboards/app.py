"""The whole workbench: tabs for the chat and the collection manager, room for more.

``WorkbenchApp`` is what Voila and notebooks display (a plain layout: templates do not
render inside notebooks) and what ``template()`` wraps for ``panel serve``. The hub
service will add sharing, usage and billing panels with ``add_tab``; the header has room
for links (``Open JupyterLab``).

The page is built for everyone (WCAG 2.1 AA): one ``<main>`` with the page's ``<h1>``, the
links in a ``<nav>``, tabs that work from the keyboard, and cards titled with ``<h2>``
(see ``layout``).
"""

from __future__ import annotations

import os

import panel as pn

from . import notebook_comms
from .chat_panel import ChatPanel
from .collection_manager import CollectionManager
from .format import esc
from .invites_banner import InvitesBanner
from .layout import Region, Tabs
from .state import AppState

TITLE = "vidrag"
HEADING = "vidrag workbench"
INTRO = "Ask questions of your lecture videos (<strong>Chat</strong>), and add or organise them (<strong>Collections</strong>)."
#: Panel extensions the components need; call ``pn.extension(*EXTENSIONS)`` before building.
EXTENSIONS = ("tabulator",)

VIEWPORT = "width=device-width, initial-scale=1"

#: Page-wide CSS (the components style themselves inside their shadow roots).
CSS = """
body { color: #1f2328; }
"""


def jupyterlab_url() -> str:
    """Where JupyterLab is for this server (under JupyterHub: the user's prefix)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/") + "/lab"


def requested_collection() -> str | None:
    """The collection the page's URL asks to open (``?collection=<id>``: where the vidrag
    service's join page sends a user who accepted a share link)."""
    from urllib.parse import parse_qs

    values = (getattr(pn.state, "session_args", None) or {}).get("collection")  # panel serve
    if values:
        value = values[0]
        return value.decode() if isinstance(value, bytes) else value
    # Voila hands the page's query string to the kernel it starts for the page
    values = parse_qs(os.environ.get("QUERY_STRING", "")).get("collection")
    return values[0] if values else None


def page(heading: str, *objects, intro: str = "", links: dict | None = None) -> Region:
    """The page's ``<main>``: an ``<h1>`` ``heading``, an ``intro`` line (HTML), a ``<nav>`` of
    ``links`` (name → URL), then ``objects``."""
    top = [pn.pane.HTML(f"<p>{intro}</p>", sizing_mode="stretch_width", margin=(0, 5))] if intro else []
    if links:
        html = " · ".join(
            f'<a href="{esc(url)}" target="_blank">{esc(name)}</a>' for name, url in links.items()
        )
        top.append(
            Region(
                pn.pane.HTML(html, sizing_mode="stretch_width", margin=(0, 5), css_classes=["vidrag-links"]),
                tag="nav",
                label="Links",
            )
        )
    return Region(*top, *objects, tag="main", heading=heading, level=1)


def served(body, title: str = TITLE) -> pn.template.BaseTemplate:
    """A page for ``panel serve``: ``body`` (a :func:`page`) under the template's header bar.

    No sidebar and no theme switch: the template draws its sidebar as a list holding
    ``<div>`` s and its switch without a name, both failures for screen readers."""
    return pn.template.FastListTemplate(
        title=title,
        main=[body],
        main_layout=None,
        theme_toggle=False,
        raw_css=[CSS],
        meta_viewport=VIEWPORT,
    )


class WorkbenchApp(pn.viewable.Viewer):
    """Chat and Collections as tabs, sharing one :class:`AppState`."""

    def __init__(
        self, wb=None, *, state: AppState | None = None, links: dict | None = None, **params
    ) -> None:
        super().__init__(**params)
        self.state = state or AppState(wb)
        wanted = requested_collection()
        if wanted and self.state.collection is None:
            self.state.collection = wanted  # the cards pick it when they list collections
        self.manager = CollectionManager(self.state, invites=False)
        self.chat = ChatPanel(self.state)
        self.tabs = Tabs(("Chat", self.chat), ("Collections", self.manager), label="Workbench")
        if self.state.wb.service is not None:
            from .usage_card import UsageCard

            self.usage = UsageCard(self.state)
            self.tabs.append(("Usage & billing", self.usage))
        self.links = dict(links or {})
        # invites waiting for me show above the tabs, whichever tab is open
        self.invites = InvitesBanner(self.state) if self.state.wb.service is not None else None
        top = [self.invites] if self.invites is not None else []
        self._layout = page(HEADING, *top, self.tabs, intro=INTRO, links=self.links)
        self.state.start()

    def __panel__(self):
        return self._layout

    def visit(self) -> None:
        """Bring a page built ahead of its visitor (in a kernel Voila pre-heated) up to date
        for them: the collection their link asks for (``?collection=``) in focus, and every
        view reread (collections, invites, jobs may have changed while it waited)."""
        wanted = requested_collection()
        if wanted and wanted != self.state.collection:
            self.state.collection = wanted
        self.state.changed()

    def add_tab(self, name: str, panel) -> None:
        """Add a panel as a tab (the hub's Sharing, Usage and Billing panels go here)."""
        self.tabs.append((name, panel))

    def template(self, title: str = TITLE) -> pn.template.BaseTemplate:
        """A served page: the app under the template's header bar."""
        return served(self, title)


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
