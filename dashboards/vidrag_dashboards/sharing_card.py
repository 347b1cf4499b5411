"""The Sharing card: who may use the shared collection in focus, and how to let more in.

Shown only to the owner and editors of a collection on the vidrag service (``wb.service``):
members and their roles (the owner may remove one, after a confirmation); invite a hub user, a JupyterHub group or an e-mail address; create
a share link with an expiry, an optional use limit and a copy button; each link's use count
and state, and revoking it. The service decides who may do what (an editor may invite and
make links, only the owner may grant roles directly); a refusal is shown as its message.

The token of a new link (or e-mail invite) is shown this once: the service keeps only its
hash, so the card keeps the full link only until the next one is made.
"""

from __future__ import annotations

import os

import pandas as pd
import panel as pn

from .card import Card, flex
from .controls import button, table
from .format import esc

MEMBER_COLUMNS = ["who", "kind", "role", "granted by"]
LINK_COLUMNS = ["role", "uses", "expires", "state", "note", "id"]
ROLES = {"viewer (read and ask)": "viewer", "editor (also add videos)": "editor"}
INVITE_KINDS = {"a hub user": "user", "a group": "group", "an e-mail address": "email"}
USE_LIMITS = {
    "no limit": 0,
    "1 use": 1,
    "5 uses": 5,
    "10 uses": 10,
    "30 uses": 30,
    "100 uses": 100,
    "500 uses": 500,
}
EXPIRY_DAYS = {"1 day": 1, "7 days": 7, "30 days": 30, "90 days": 90}

#: Copies the link field beside the button (Clipboard API; the text stays selectable in the
#: field for browsers that refuse it, as on plain http away from localhost).
COPY_JS = """
const value = link.value || ""
// a path on the hub (no public URL configured) becomes a link on this page's origin
const url = value.startsWith("/") ? window.location.origin + value : value
if (navigator.clipboard) { navigator.clipboard.writeText(url) }
"""


def field(obj, name: str, default=None):
    """``name`` of a record the client returns (a dataclass, or a dict from older clients)."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def absolute(path: str | None, base: str = "") -> str:
    """A join path as a link someone can open: ``base`` (the hub's address) + path."""
    if not path:
        return ""
    return base.rstrip("/") + path if base and path.startswith("/") else path


class SharingCard(Card):
    """Members, invites and share links of the shared collection in focus."""

    title = "Sharing"
    css_class = "vidrag-sharing"

    def __init__(self, state, notices=None, *, hub_url: str | None = None, **params) -> None:
        super().__init__(state, notices, **params)
        # the hub's public address when JupyterHub knows it; else links stay paths on the hub
        self.hub_url = hub_url if hub_url is not None else os.environ.get("JUPYTERHUB_PUBLIC_URL", "")
        self.heading = pn.pane.HTML("", sizing_mode="stretch_width")
        self.members = table(
            pd.DataFrame(columns=MEMBER_COLUMNS), selectable=1, max_height=220, css_classes=["vidrag-members"]
        )
        self.remove_button = button("Remove selected member", "danger", disabled=True)

        self.invite_kind = pn.widgets.Select(
            label="Invite", options=INVITE_KINDS, sizing_mode="stretch_width"
        )
        self.invite_name = pn.widgets.TextInput(
            label="Name, group or e-mail",
            placeholder="sam, cs101 or sam@example.org",
            sizing_mode="stretch_width",
        )
        self.invite_role = pn.widgets.Select(label="As", options=ROLES, sizing_mode="stretch_width")
        self.invite_button = button("Send invite", "primary")
        self.invite_result = pn.pane.HTML(
            "", sizing_mode="stretch_width", css_classes=["vidrag-invite-result"]
        )

        self.link_role = pn.widgets.Select(label="Link gives", options=ROLES, sizing_mode="stretch_width")
        self.link_expiry = pn.widgets.Select(
            label="Expires after", options=EXPIRY_DAYS, value=7, sizing_mode="stretch_width"
        )
        # a Select, not an IntInput: Bokeh's spinner buttons have no accessible names
        self.link_uses = pn.widgets.Select(
            label="Use limit", options=USE_LIMITS, value=0, sizing_mode="stretch_width"
        )
        self.link_note = pn.widgets.TextInput(
            label="Note (for you)", placeholder="week 1 e-mail", sizing_mode="stretch_width"
        )
        self.link_button = button("Create link", "primary")
        self.new_link = pn.widgets.TextInput(
            label="New share link", visible=False, sizing_mode="stretch_width"
        )
        self.copy_button = button("Copy link", "light", visible=False)
        self.copy_button.js_on_click(args={"link": self.new_link}, code=COPY_JS)
        self.links = table(
            pd.DataFrame(columns=LINK_COLUMNS),
            selectable=1,
            max_height=220,
            hidden_columns=["id"],
            css_classes=["vidrag-links-table"],
        )
        self.revoke_button = button("Revoke selected link", "danger", disabled=True)

        self.remove_button.on_click(lambda e: self.guard(self.ask_remove))
        self.members.param.watch(lambda e: setattr(self.remove_button, "disabled", not e.new), "selection")
        self.invite_button.on_click(lambda e: self.guard(self.invite))
        self.link_button.on_click(lambda e: self.guard(self.create_link))
        self.revoke_button.on_click(lambda e: self.guard(self.revoke_selected))
        self.links.param.watch(lambda e: setattr(self.revoke_button, "disabled", not e.new), "selection")
        state.param.watch(lambda *e: self.guard(self.refresh), ["role", "library", "revision", "collection"])
        self.refresh()

    @property
    def sharing(self):
        """The service client's sharing calls (None without the service)."""
        service = getattr(self.wb, "service", None)
        return getattr(service, "sharing", None) if service is not None else None

    def body(self) -> list:
        return [
            self.heading,
            pn.pane.HTML("<h3>Members</h3>", margin=(0, 5)),
            self.members,
            self.remove_button,
            pn.pane.HTML("<h3>Invite</h3>", margin=(0, 5)),
            flex(self.invite_kind, self.invite_name, self.invite_role, basis="160px"),
            self.invite_button,
            self.invite_result,
            pn.pane.HTML("<h3>Share links</h3>", margin=(0, 5)),
            flex(self.link_role, self.link_expiry, self.link_uses, self.link_note, basis="150px"),
            self.link_button,
            pn.Row(self.new_link, self.copy_button, sizing_mode="stretch_width"),
            self.links,
            self.revoke_button,
        ]

    def __panel__(self):
        section = super().__panel__()
        section.visible = self.applies
        return section

    @property
    def applies(self) -> bool:
        """Shown for a shared collection I own or edit, when the client can share."""
        return self.sharing is not None and self.state.may_share

    def refresh(self) -> None:
        """Reload members and links of the collection in focus (nothing when it does not apply)."""
        if self._section is not None:
            self._section.visible = self.applies
        if not self.applies:
            return
        ref = self.state.collection
        info = self.wb.collections.get(ref)
        self.heading.object = (
            f"<p>Who may use <strong>{esc(info.name)}</strong> (owner {esc(info.owner)}; "
            f"you are {esc(info.role)}).</p>"
        )
        self.members.value = pd.DataFrame(
            [
                {
                    "who": field(m, "name"),
                    "kind": field(m, "kind"),
                    "role": field(m, "role"),
                    "granted by": field(m, "granted_by") or "",
                }
                for m in self.sharing.members(ref)
            ],
            columns=MEMBER_COLUMNS,
        )
        self.members.selection = []
        self.remove_button.visible = self.state.role == "owner"  # only the owner changes grants
        self.refresh_links()

    def refresh_links(self) -> None:
        """Reload the links table with each link's use count and state."""
        rows = []
        for link in self.sharing.links(self.state.collection):
            limit = field(link, "max_uses")
            rows.append(
                {
                    "role": field(link, "role"),
                    "uses": f"{field(link, 'uses', 0)} of {limit}" if limit else str(field(link, "uses", 0)),
                    "expires": (field(link, "expires_at") or "")[:16].replace("T", " "),
                    "state": str(field(link, "state", "")).replace("_", " "),
                    "note": field(link, "note") or "",
                    "id": field(link, "id"),
                }
            )
        self.links.value = pd.DataFrame(rows, columns=LINK_COLUMNS)
        self.links.selection = []

    def ask_remove(self) -> None:
        """Ask to confirm removing the selected member's grant (not the owner's)."""
        value = self.members.value
        if value is None or value.empty or not self.members.selection:
            self.say("Select a member in the table first.", "warning")
            return
        row = value.iloc[self.members.selection[0]]
        if row["role"] == "owner":
            self.say("The owner cannot be removed (transfer the ownership first).", "warning")
            return
        kind, name = row["kind"], row["who"]
        self.notices.confirm(
            f"Remove the {esc(kind)} <strong>{esc(name)}</strong> ({esc(row['role'])}) from this collection?",
            lambda: self._remove(kind, name),
        )

    def _remove(self, kind: str, name: str) -> None:
        self.sharing.revoke(self.state.collection, **{kind: name})
        self.say(f"Removed {name}.", "success")
        self.refresh()

    def invite(self) -> None:
        """Invite the user, group or e-mail address typed, with the role chosen."""
        target = self.invite_name.value_input or self.invite_name.value or ""
        target = target.strip()
        if not target:
            self.say("Type a user name, a group or an e-mail address to invite.", "warning")
            return
        kind = self.invite_kind.value
        invite = self.sharing.invite(self.state.collection, role=self.invite_role.value, **{kind: target})
        self.invite_name.value = ""
        join = absolute(field(invite, "join_path"), self.hub_url)
        if join:
            # an e-mail invite: the hub knows no addresses, so the inviter sends its link
            self.invite_result.object = (
                f"<p>Send this link to <strong>{esc(target)}</strong> (shown once): "
                f"<code>{esc(join)}</code></p>"
            )
        else:
            self.invite_result.object = (
                f"<p>Invited <strong>{esc(target)}</strong>; they accept it in vidrag.</p>"
            )
        self.say(f"Invited {target} as {self.invite_role.value}.", "success")
        self.refresh()

    def create_link(self) -> None:
        """Create a share link with the expiry, use limit and note chosen; show it to copy."""
        limit = int(self.link_uses.value or 0)
        link = self.sharing.create_link(
            self.state.collection,
            role=self.link_role.value,
            expires_in_days=float(self.link_expiry.value),
            max_uses=limit or None,
            note=self.link_note.value or "",
        )
        url = absolute(field(link, "join_path"), self.hub_url) or field(link, "token", "")
        self.new_link.param.update(value=url, visible=True)
        self.copy_button.visible = True
        self.link_note.value = ""
        self.say("Link created: copy it now, it is shown only this once.", "success")
        self.refresh_links()

    def selected_link(self) -> str | None:
        """The id of the link selected in the table."""
        value = self.links.value
        if value is None or value.empty or not self.links.selection:
            return None
        return value.iloc[self.links.selection[0]]["id"]

    def revoke_selected(self) -> None:
        """Revoke the selected link (anyone holding it can no longer join)."""
        link_id = self.selected_link()
        if not link_id:
            self.say("Select a link in the table first.", "warning")
            return
        self.sharing.revoke_link(self.state.collection, link_id)
        self.say("Link revoked.", "success")
        self.refresh_links()
