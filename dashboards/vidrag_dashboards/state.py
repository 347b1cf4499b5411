"""What the dashboards of one browser session share: the Workbench, the UI queue, a revision.

The manager and the chat are separate components; when one changes the catalog
(a collection created, a video ingested or deleted) it calls :meth:`AppState.changed`,
and every view that lists collections or videos refreshes on ``revision``.
"""

from __future__ import annotations

import threading

import param

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

    def __init__(self, wb=None, **params) -> None:
        super().__init__(**params)
        self.wb = wb if wb is not None else shared_workbench()
        self.ui = UiQueue()

    def changed(self) -> None:
        """Tell every view the catalog changed (call on the UI side)."""
        self.revision += 1

    def start(self) -> None:
        """Start applying background updates; call where the document is current."""
        self.ui.start()
