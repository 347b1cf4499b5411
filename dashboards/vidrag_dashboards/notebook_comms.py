"""Notebooks and Voila: drop the browser's late echoes of what the kernel changed.

In JupyterLab and Voila, Panel shows the dashboards as a jupyter_bokeh ``BokehModel``
widget. Its browser half sends every change it applies from the kernel back to the kernel,
and while the kernel is busy it queues them. A late echo then overwrites a newer value in
the kernel's document. Seen in the chat: "New conversation" emptied the answers column
(``children = []``) and the next question was appended within one busy spell; the echo of
the empty column came back after the append, detached the new answer from the document,
and the answer never reached the page (``tests/test_dashboards_hub.py``).

:class:`EchoFilteringBokehModel` remembers what the kernel sent for each (model, property)
and drops an incoming change equal to one of those values whose echo is still due. Changes
the user makes (typed text, a picked option, the player's time) still arrive. Values it
cannot compare are let through, which is what jupyter_bokeh does anyway.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

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


@functools.cache
def widget_class():
    """:class:`EchoFilteringBokehModel`, built on jupyter_bokeh's own widget (its only base)."""
    from bokeh.document.events import ModelChangedEvent
    from jupyter_bokeh.widgets import BokehModel

    class EchoFilteringBokehModel(BokehModel):
        """jupyter_bokeh's widget, minus the echoes of the kernel's own changes."""

        def __init__(self, *args, **kwargs) -> None:
            self._due: dict[tuple[str, str], deque] = {}
            super().__init__(*args, **kwargs)

        def _document_patched(self, event) -> None:
            if event.setter is not self and isinstance(event, ModelChangedEvent):
                key = (event.model.id, event.attr)
                self._due.setdefault(key, deque(maxlen=_KEEP)).append(fingerprint(event.new))
            super()._document_patched(event)

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
            return False

        def _sync_model(self, _model, content: dict, _buffers) -> None:
            if content.get("event") == "jsevent" and self._is_echo(content):
                return
            super()._sync_model(_model, content, _buffers)

    return EchoFilteringBokehModel


def install() -> None:
    """Make Panel's notebook rendering use :class:`EchoFilteringBokehModel` (idempotent).

    Panel imports ``jupyter_bokeh.widgets.BokehModel`` each time it renders a notebook
    output, so replacing that name is enough; without jupyter_bokeh this does nothing.
    """
    try:
        import jupyter_bokeh.widgets as widgets
    except ImportError:
        return
    widgets.BokehModel = widget_class()
