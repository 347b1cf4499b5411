"""vidrag's Panel dashboards: the collection manager, the chat with a player, the workbench.

In a notebook::

    import vidrag_dashboards
    vidrag_dashboards.manager()      # or .chat(), or .workbench()

Served: ``panel serve dashboards/apps/*.py --plugins vidrag_dashboards.media`` (the plugin
serves local media files to the player). In Voila: ``dashboards/workbench.ipynb``.

Modules: ``app`` (the page, tabs, template, these three functions); ``collection_manager``, a
page of cards (``card`` is their base): ``collections_card``, ``add_videos`` (with the upload
receiver and ``uploads``), ``failed_jobs``, ``videos_card``, and with the vidrag service ``sharing_card`` (members,
invites, share links), ``schedules_card`` (scheduled batch ingests), ``invites_banner`` (invites waiting for me) and ``usage_card`` (the Usage & billing tab); ``scopes`` (grouping
"My collections" and "Shared with me"); ``chat_panel``; ``player`` and
``media`` (playing videos from a second), ``transcript``; ``state`` and ``background``
(per-session state, work off the UI thread); ``feedback`` (the one error edge and notices);
``layout`` and ``controls`` (landmarks, headings, keyboard tabs, AA colours); ``format``;
``notebook_comms`` (a guarded fix for jupyter_bokeh in notebooks and Voila); ``preheat`` (a
Jupyter server extension: Voila's pre-heated kernels for the landing page) and ``warmup``
(such a kernel waiting for its visitor).
(No module is named ``chat`` or ``manager``: importing it would shadow the function.)
"""

from __future__ import annotations

__all__ = ["chat", "manager", "wait_for_visitor", "workbench"]


def manager(wb=None):
    """The collection manager on ``wb`` (default: the Workbench of the ``VIDRAG_*`` environment)."""
    from .app import manager

    return manager(wb)


def chat(wb=None):
    """The chat with its player on ``wb`` (default: the Workbench of the ``VIDRAG_*`` environment)."""
    from .app import chat

    return chat(wb)


def workbench(wb=None, *, links: dict | None = None):
    """Chat and Collections tabs on ``wb``; ``links`` (name → URL) show above the tabs."""
    from .app import workbench

    return workbench(wb, links=links)


def wait_for_visitor(app=None, view=None) -> dict:
    """In a kernel Voila pre-heated for the workbench page (``vidrag_dashboards.preheat``),
    where the cells before this one ran before anyone asked for the page: wait for its
    visitor, then bring ``app`` (a ``WorkbenchApp``) up to date for them (``app.visit()``:
    the collection their link asks for, what changed meanwhile) and send ``view``
    (``pn.ipywidget(app)``) again if it changed before any browser showed it. The request's
    variables (``QUERY_STRING``...); anywhere else ``{}`` at once.

    The catching up (about a second: it rereads collections, invites and jobs from the
    service) is not on the page's critical path. This cell returns once the request is in,
    so Voila sends the page at once; the catching up then runs on the kernel's event loop
    (``app.state.ui``) while the browser loads its scripts, and in any case before the
    kernel answers the page's first request for the widgets' state
    (``warmup.before_widget_states``), so the page never renders what it had before."""
    from .warmup import before_widget_states, preheated, wait_for_visitor

    if not preheated():
        return {}
    info = wait_for_visitor()
    catch_up = _Once(_catch_up, app, view)
    if app is not None and before_widget_states(catch_up):
        app.state.ui.put(catch_up)
    else:
        catch_up()
    return info


class _Once:
    """``fn(*args)`` the first time it is called, nothing after."""

    def __init__(self, fn, *args) -> None:
        self._fn, self._args, self._done = fn, args, False

    def __call__(self) -> None:
        if not self._done:
            self._done = True
            self._fn(*self._args)


def _catch_up(app, view) -> None:
    """A page built ahead of its visitor brought up to date (see :func:`wait_for_visitor`)."""
    if app is not None:
        app.visit()
    if view is not None and hasattr(view, "rerender"):
        if view.unseen_changes:
            view.rerender()
    elif view is not None:
        # stock jupyter_bokeh (outside notebook_comms.TESTED) cannot tell: send it all again
        view.update_from_model(view._model)
