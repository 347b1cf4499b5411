"""The pending-invites banner: invites waiting for me on the vidrag service, each with
Accept and Decline. Accepting adds the collection under "Shared with me" (the catalog
revision is bumped so every list refreshes). Hidden when nothing waits or there is no
service."""

from __future__ import annotations

import panel as pn

from .controls import button
from .feedback import Notices
from .format import esc
from .sharing_card import field
from .state import AppState

BANNER_STYLE = {
    "background": "#fff8c5",
    "border": "1px solid #d4a72c",
    "padding": "4px 8px",
    "border-radius": "6px",
}


class InvitesBanner(pn.viewable.Viewer):
    """Invites waiting for this user, to accept or decline."""

    def __init__(self, state: AppState, notices: Notices | None = None, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.wb = state.wb
        self.notices = notices if notices is not None else Notices()
        self.rows = pn.Column(sizing_mode="stretch_width")
        self.box = pn.Column(
            pn.pane.HTML("<strong>Invites waiting for you</strong>", margin=(0, 5)),
            self.rows,
            visible=False,
            sizing_mode="stretch_width",
            styles=BANNER_STYLE,
            css_classes=["vidrag-invites"],
        )
        # the message line stays when the box hides with its last invite
        self._layout = pn.Column(self.notices, self.box, sizing_mode="stretch_width")
        self.pending: list = []
        state.param.watch(lambda e: self.notices.guard(self.refresh), "revision")
        self.notices.guard(self.refresh)

    def __panel__(self):
        return self._layout

    @property
    def sharing(self):
        service = getattr(self.wb, "service", None)
        return getattr(service, "sharing", None) if service is not None else None

    def refresh(self) -> None:
        """Reload the invites waiting for me."""
        sharing = self.sharing
        self.pending = list(sharing.invites()) if sharing is not None else []
        rows = []
        for invite in self.pending:
            text = pn.pane.HTML(
                f"<p><strong>{esc(field(invite, 'invited_by') or field(invite, 'owner'))}</strong> invites you "
                f"to <strong>{esc(field(invite, 'collection'))}</strong> as {esc(field(invite, 'role'))}.</p>",
                sizing_mode="stretch_width",
            )
            accept = button("Accept", "success")
            decline = button("Decline", "light")
            accept.on_click(lambda e, i=invite: self.notices.guard(self.answer, i, True))
            decline.on_click(lambda e, i=invite: self.notices.guard(self.answer, i, False))
            rows.append(
                pn.Row(text, accept, decline, sizing_mode="stretch_width", css_classes=["vidrag-invite"])
            )
        self.rows.objects = rows
        self.box.visible = bool(rows)

    def answer(self, invite, accept: bool) -> None:
        """Accept or decline ``invite``; an accepted collection appears under "Shared with me"."""
        invite_id = field(invite, "id")
        name = field(invite, "collection")
        if accept:
            joined = self.sharing.accept(invite_id)
            self.state.collection = field(joined, "collection_id") or self.state.collection
            self.state.changed()  # refreshes this banner too
            self.notices.say(f"You joined “{name}” as {field(joined, 'role')}.", "success")
        else:
            self.sharing.decline(invite_id)
            self.refresh()
            self.notices.say(f"Declined the invite to “{name}”.", "info")
