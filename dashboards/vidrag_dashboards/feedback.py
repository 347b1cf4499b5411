"""What people see when an action fails, and the notices above a dashboard.

One rule at the edge, for every app: a :class:`~vidrag_kernel.VidragError` is shown with
its own message (written for users); anything else is a bug or an outage, so it is logged
with its traceback for whoever runs the server and the user gets a short message instead
of the exception's text. :func:`guarded` runs an action under that rule; background work
reports through :func:`user_message` the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import panel as pn

from vidrag_kernel import VidragError

from .controls import alert, button

log = logging.getLogger("vidrag_dashboards")

#: Shown for errors that are not the user's to fix; the details go to the server's log.
UNEXPECTED = "Something went wrong on our side (the details are in the server's log). Please try again."


def user_message(exc: BaseException) -> str:
    """The message for ``exc``: a VidragError's own, else :data:`UNEXPECTED` (and log it)."""
    if isinstance(exc, VidragError):
        return exc.message
    log.error("unexpected error in a dashboard action", exc_info=(type(exc), exc, exc.__traceback__))
    return UNEXPECTED


def guarded(action: Callable[..., Any], say: Callable[[str], Any], *args, **kwargs) -> bool:
    """Run ``action(*args, **kwargs)``; on an error, ``say(user_message(error))``. True if it ran."""
    try:
        action(*args, **kwargs)
    except Exception as exc:
        say(user_message(exc))
        return False
    return True


class Notices(pn.viewable.Viewer):
    """A dashboard's message line and its confirmation box, shared by the cards of one page."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.status = alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.confirm_text = pn.pane.HTML("", sizing_mode="stretch_width")
        self.confirm_button = button("Confirm", "danger")
        self.cancel_button = button("Cancel")
        self.confirm_row = pn.Column(
            self.confirm_text,
            pn.Row(self.confirm_button, self.cancel_button),
            visible=False,
            sizing_mode="stretch_width",
            css_classes=["vidrag-confirm"],
        )
        self._action: Callable[[], Any] | None = None
        self.confirm_button.on_click(lambda e: self.guard(self.confirmed))
        self.cancel_button.on_click(lambda e: self.hide_confirm())
        self._layout = pn.Column(self.status, self.confirm_row, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def say(self, message: str, kind: str = "info") -> None:
        """Show ``message`` (kind: info, success, warning, danger); an empty one hides the line."""
        self.status.param.update(object=message, alert_type=kind, visible=bool(message))

    def guard(self, action: Callable[..., Any], *args, **kwargs) -> bool:
        """:func:`guarded` with errors shown here as danger."""
        return guarded(action, lambda m: self.say(m, "danger"), *args, **kwargs)

    def confirm(self, html: str, action: Callable[[], Any]) -> None:
        """Ask before ``action``: show ``html`` (escaped by the caller) with Confirm and Cancel."""
        self._action = action
        self.confirm_text.object = html
        self.confirm_row.visible = True

    def confirmed(self) -> None:
        """Run the action waiting for confirmation (the Confirm button)."""
        action, self._action = self._action, None
        self.hide_confirm()
        if action is not None:
            action()

    def hide_confirm(self) -> None:
        self.confirm_row.visible = False
        self._action = None
