"""What the dashboards of one browser session share: the Workbench, the UI queue, a revision.

The manager and the chat are separate components; when one changes the catalog
(a collection created, a video ingested or deleted) it calls :meth:`AppState.changed`,
and every view that lists collections or videos refreshes on ``revision``.
"""

from __future__ import annotations

import threading

import param

from vidrag_kernel import VidragError

from .background import UiQueue

_shared_lock = threading.Lock()
_shared: dict = {}


def shared_workbench():
    """One Workbench per process, built from the ``VIDRAG_*`` environment.

    Every ``panel serve`` session (and the media route) uses it: the catalog engine and
    loaded models are process-wide anyway, and two Workbenches on one SQLite file would
    only contend for it.
    """
    with _shared_lock:
        if "wb" not in _shared:
            from vidrag_kernel import Workbench

            _shared["wb"] = Workbench()
        return _shared["wb"]


class AppState(param.Parameterized):
    """Per-session state: the Workbench, the UI queue and change notifications."""

    revision = param.Integer(default=0, doc="Bumped whenever collections or videos change.")
    collection = param.String(default=None, allow_None=True, doc="The collection (id) in focus.")
    ingesting = param.Integer(default=0, doc="Ingest runs in progress in this session.")
    role = param.String(
        default=None, allow_None=True, doc="My role on the collection in focus (owner, editor, viewer)."
    )
    library = param.String(
        default=None, allow_None=True, doc="The library holding the collection in focus (local, shared)."
    )

    def __init__(self, wb=None, **params) -> None:
        super().__init__(**params)
        self.wb = wb if wb is not None else shared_workbench()
        self.ui = UiQueue()
        # before any card's watcher: cards read the role when the focus or revision changes
        self.param.watch(lambda *e: self.follow_focus(), ["collection", "revision"])
        self.follow_focus()

    def follow_focus(self) -> None:
        """Look up my role on the collection in focus (none: nothing in focus, or it is gone)."""
        role = library = None
        if self.collection:
            try:
                info = self.wb.collections.get(self.collection)
                role, library = info.role, getattr(info, "library", "local")
            except VidragError:
                pass  # deleted meanwhile, or the service is down: the next refresh moves the focus
        self.param.update(role=role, library=library)

    @property
    def may_edit(self) -> bool:
        """Whether I may add, change or remove videos and details of the collection in focus
        (with nothing in focus, new videos go to my own default collection)."""
        return self.role in (None, "owner", "editor")

    @property
    def may_delete(self) -> bool:
        """Whether I may delete the collection in focus (its owner only)."""
        return self.role == "owner"

    @property
    def may_share(self) -> bool:
        """Whether the Sharing card applies: a shared collection I own or edit."""
        return self.library == "shared" and self.role in ("owner", "editor")

    def changed(self) -> None:
        """Tell every view the catalog changed (call on the UI side)."""
        self.revision += 1

    def start(self) -> None:
        """Start applying background updates; call where the document is current."""
        self.ui.start()
