"""The base of a dashboard card: one titled section on the session's :class:`AppState`.

The collection manager is a page of cards (collections, add videos, failed ingests,
videos, transcript); the hub's Sharing, Usage and Billing panels join it, or any other
page, the same way: subclass :class:`Card`, build widgets in ``__init__``, return them from
``body()``, refresh on ``state.revision``, and report through ``self.notices``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn

from .feedback import Notices
from .layout import Section
from .state import AppState


class Card(pn.viewable.Viewer):
    """A titled section of a dashboard page; ``title`` names it (its ``<h2>``)."""

    title: str = ""
    css_class: str = ""

    def __init__(self, state: AppState, notices: Notices | None = None, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.wb = state.wb
        self.notices = notices if notices is not None else Notices()
        self._section = None

    def body(self) -> list:
        """The card's contents, top to bottom."""
        raise NotImplementedError

    def __panel__(self):
        if self._section is None:
            classes = [self.css_class] if self.css_class else []
            self._section = Section(self.title, *self.body(), css_classes=classes)
        return self._section

    def say(self, message: str, kind: str = "info") -> None:
        """Show ``message`` on the page's notice line."""
        self.notices.say(message, kind)

    def guard(self, action: Callable[..., Any], *args, **kwargs) -> bool:
        """Run a UI action; an error becomes a message (VidragError as is, others logged)."""
        return self.notices.guard(action, *args, **kwargs)

    def refresh(self) -> None:
        """Reload what the card shows from the catalog (default: nothing)."""


def flex(*objects, basis: str = "420px") -> pn.FlexBox:
    """Children side by side on wide screens, stacked on narrow ones."""
    for obj in objects:
        obj.styles = {**(obj.styles or {}), "flex": f"1 1 {basis}", "min-width": "0"}
    return pn.FlexBox(*objects, flex_wrap="wrap", gap="12px", sizing_mode="stretch_width")
