"""How the dashboards render in JupyterLab and Voila: a better jupyter_bokeh widget.

There Panel shows the dashboards as a jupyter_bokeh ``BokehModel`` widget. Two things go
wrong with the stock widget, and :class:`NotebookWidget` fixes both:

- **Late echoes.** Its browser half sends every change it applied from the kernel back to
  the kernel, and while the kernel is busy it queues them. A late echo then overwrites a
  newer value in the kernel's document. Seen in the chat: "New conversation" emptied the
  answers column (``children = []``) and the next question was appended within one busy
  spell; the echo of the empty column came back after the append, detached the new answer
  from the document, and the answer never reached the page. The widget remembers what the
  kernel sent for each (model, property) and drops an incoming change equal to one of
  those values whose echo is still due. Changes the user makes (typed text, a picked
  option, the player's time) still arrive, and clear what was due for that property (the
  browser folds queued changes of one property into the newest, so an echo queued before a
  user's change never comes); values it cannot compare are let through.
- **Stylesheets from a CDN.** Panel links its components' stylesheets (tables, buttons,
  cards) from ``cdn.holoviz.org``; it inlines them for its own notebook comms with
  ``inline=True`` but not for this widget, so on a server without internet tables render
  unstyled. With ``pn.config.inline`` the widget replaces them, in every model it sends,
  with the same files from the installed Panel (one shared stylesheet model per file).

``tests/test_notebook_comms.py`` feeds the widget what the browser sends;
``tests/test_dashboards_hub.py`` runs the whole story in a real browser through Voila.

The widget overrides private methods of jupyter_bokeh's ``BokehModel`` and replaces that
class for the whole process, so :func:`install` does it only for the jupyter_bokeh
versions it was written and tested against (:data:`TESTED`, pinned in pyproject's
``dashboards`` extra); on any other it warns and leaves the library alone. The bug report
for upstream is ``dashboards/UPSTREAM.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections import deque
from typing import Any

#: The jupyter_bokeh releases :class:`NotebookWidget` was tested with (keep pyproject's pin equal).
TESTED = ">=4.1.0,<4.2"
#: The private methods of ``BokehModel`` it overrides or calls.
OVERRIDDEN = ("update_from_model", "_document_patched", "_sync_model")

#: Pending echoes remembered per (model, property); the browser drops older ones itself
#: when it combines queued events.
_KEEP = 32


class _Opaque:
    """A fingerprint equal to nothing: for values this module does not compare."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


def fingerprint(value: Any) -> Any:
    """A comparable form of a kernel-side property value (models by id)."""
    from bokeh.model import Model

    if isinstance(value, Model):
        return ("ref", value.id)
    if isinstance(value, (list, tuple)):
        return tuple(fingerprint(v) for v in value)
    if isinstance(value, dict):
        return ("map", tuple(sorted((str(k), fingerprint(v)) for k, v in value.items())))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _Opaque()


def fingerprint_json(value: Any) -> Any:
    """The same form for a value as BokehJS serialized it."""
    if isinstance(value, list):
        return tuple(fingerprint_json(v) for v in value)
    if isinstance(value, dict):
        if "id" in value and value.get("type") in (None, "object"):
            return ("ref", value["id"])
        if value.get("type") == "map":
            return ("map", tuple(sorted((str(k), fingerprint_json(v)) for k, v in value.get("entries", []))))
        if "type" in value:  # typed arrays, numbers like NaN, bytes…
            return _Opaque()
        return ("map", tuple(sorted((str(k), fingerprint_json(v)) for k, v in value.items())))
    return value


def _models_in(value: Any):
    """The Bokeh models in a property value (lists, tuples and dicts of them)."""
    from bokeh.model import Model

    if isinstance(value, Model):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _models_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _models_in(v)


class InlineStylesheets:
    """Panel's CDN stylesheets swapped for the installed files, one model per file."""

    def __init__(self) -> None:
        self._by_url: dict[str, Any] = {}

    def replace(self, sheets) -> list | None:
        """``sheets`` with Panel's CDN stylesheets inlined, or None when there were none."""
        from bokeh.models import ImportedStyleSheet
        from panel.io.notebook import replace_inline_css

        out, changed = [], False
        for sheet in sheets:
            if isinstance(sheet, ImportedStyleSheet):
                if sheet.url not in self._by_url:
                    self._by_url[sheet.url] = replace_inline_css(sheet)  # itself if not Panel's
                new = self._by_url[sheet.url]
                changed |= new is not sheet
                sheet = new
            out.append(sheet)
        return out if changed else None

    def apply(self, roots, setter) -> None:
        """Inline the stylesheets of every UI element under ``roots``, as ``setter``."""
        from bokeh.models import UIElement

        for root in roots:
            for model in root.references():
                if isinstance(model, UIElement):
                    new = self.replace(model.stylesheets)
                    if new is not None:
                        model.lookup("stylesheets").__set__(model, new, setter=setter)


@functools.cache
def widget_class():
    """:class:`NotebookWidget`, built on jupyter_bokeh's own widget (its only base)."""
    from bokeh.document.events import ModelChangedEvent
    from jupyter_bokeh.widgets import BokehModel

    class NotebookWidget(BokehModel):
        """jupyter_bokeh's widget without late echoes, with Panel's stylesheets inline."""

        def __init__(self, *args, **kwargs) -> None:
            self._due: dict[tuple[str, str], deque] = {}
            #: a change was sent while no browser showed the widget (see :meth:`rerender`)
            self.unseen_changes = False
            super().__init__(*args, **kwargs)

        def update_from_model(self, model) -> None:
            import panel as pn

            self._sheets = InlineStylesheets() if pn.config.inline else None
            if self._sheets is not None:
                self._sheets.apply([model], setter=self)
            super().update_from_model(model)

        def _document_patched(self, event) -> None:
            if event.setter is not self and isinstance(event, ModelChangedEvent):
                if self._sheets is not None:
                    # before jupyter_bokeh serializes the event, so new models go out inlined
                    if event.attr == "stylesheets":
                        new = self._sheets.replace(event.new)
                        if new is not None:
                            event.model.lookup("stylesheets").__set__(event.model, new, setter=self)
                            event.new = new
                    else:
                        self._sheets.apply(list(_models_in(event.new)), setter=self)
                key = (event.model.id, event.attr)
                self._due.setdefault(key, deque(maxlen=_KEEP)).append(fingerprint(event.new))
            if event.setter is not self and not self._view_count:
                self.unseen_changes = True
            super()._document_patched(event)

        def rerender(self) -> None:
            """Send the whole document again, as the widget's state. For changes made before
            any browser showed the widget (a page built ahead of its visitor, in a kernel
            Voila pre-heated): their patches went to no one, and a browser that connects
            renders the state, which the widget set when it was built. No echo is due after it."""
            self._due.clear()
            self.unseen_changes = False
            self.update_from_model(self._model)

        def _is_echo(self, content: dict) -> bool:
            if content.get("kind") != "ModelChanged":
                return False
            key = ((content.get("model") or {}).get("id"), content.get("attr"))
            due = self._due.get(key)
            if not due:
                return False
            new = fingerprint_json(content.get("new"))
            for i, sent in enumerate(due):
                if sent == new:
                    for _ in range(i + 1):  # this echo, and older ones the browser combined away
                        due.popleft()
                    return True
            # the user's own change: the browser sends in order and folds queued changes of
            # one property into the newest, so no echo sent before this one can still come
            due.clear()
            return False

        def _sync_model(self, _model, content: dict, _buffers) -> None:
            if content.get("event") == "jsevent" and self._is_echo(content):
                return
            super()._sync_model(_model, content, _buffers)

    return NotebookWidget


def tested(version: str) -> bool:
    """Whether ``version`` of jupyter_bokeh is one :class:`NotebookWidget` was tested with."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(TESTED).contains(version, prereleases=True)


def install() -> bool:
    """Make Panel's notebook rendering use :class:`NotebookWidget` (idempotent); True if it does.

    Panel imports ``jupyter_bokeh.widgets.BokehModel`` each time it renders a notebook
    output, so replacing that name is enough. Without jupyter_bokeh this does nothing; with
    a version outside :data:`TESTED` (or one lacking the methods it overrides) it warns and
    leaves jupyter_bokeh as it is.
    """
    try:
        import jupyter_bokeh
        import jupyter_bokeh.widgets as widgets
    except ImportError:
        return False
    version = getattr(jupyter_bokeh, "__version__", "unknown")
    current = widgets.BokehModel
    if current is widget_class():
        return True
    if not tested(version) or not all(callable(getattr(current, name, None)) for name in OVERRIDDEN):
        warnings.warn(
            f"vidrag_dashboards: jupyter_bokeh {version} is not a version its notebook fix was "
            f"tested with ({TESTED}), so jupyter_bokeh is left as it is. In Voila and JupyterLab "
            "a late echo from the browser may then undo a change (an answer that never shows) "
            "and Panel's stylesheets load from its CDN. Install 'vidrag[dashboards]' for the "
            "tested range; the bug is described in dashboards/UPSTREAM.md.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    widgets.BokehModel = widget_class()
    return True
