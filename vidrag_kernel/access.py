"""Who may see, change or delete which collections: one policy object every part asks.

Three actions, each needing a role at least as strong:

- ``read`` (viewer): list and open a collection, search it, ask it, read transcripts;
- ``edit`` (editor): add and remove videos, tag them, change the collection's metadata,
  see its ingest jobs;
- ``manage`` (owner): delete or rename the collection, change who may use it.

``Access`` is the personal-mode policy: a user holds the owner role on the collections
whose ``owner`` they are and no role on any other. The vidrag service subclasses it with
the grants in its database (users and JupyterHub groups, highest grant wins); callers
never compare owners themselves, so they need no change when roles arrive.

A collection the user holds no role on is reported as not found rather than forbidden,
so that names and ids of other people's collections do not leak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, exists, select

from .catalog import Collection, CollectionVideo, Conversation, IngestJob
from .errors import Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ROLES = ("viewer", "editor", "owner")  # weakest first
ACTIONS = {"read": "viewer", "edit": "editor", "manage": "owner"}


def role_rank(role: str | None) -> int:
    """0 for no role, then 1 (viewer) to 3 (owner)."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def strongest(roles) -> str | None:
    """The highest of several grants (None when there are none)."""
    best = max(roles, key=role_rank, default=None)
    return best if role_rank(best) else None


class Access:
    """The personal-mode policy for ``user``: owners may do everything, others nothing."""

    def __init__(self, user: str) -> None:
        self.user = user

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user={self.user!r})"

    # -- what subclasses override -------------------------------------------------------
    def visible(self) -> ColumnElement[bool]:
        """A condition on ``Collection`` rows: those this user holds any role on."""
        return Collection.owner == self.user

    def role(self, session: Session, collection: Collection) -> str | None:
        """This user's role on ``collection``: owner, editor, viewer or None."""
        return "owner" if collection.owner == self.user else None

    # -- what every caller uses ----------------------------------------------------------
    def allows(self, session: Session, collection: Collection, action: str) -> bool:
        """Whether this user may do ``action`` (read, edit, manage) to ``collection``."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        return role_rank(self.role(session, collection)) >= role_rank(ACTIONS[action])

    def require(self, session: Session, collection: Collection, action: str) -> str:
        """This user's role, or an error: NotFound without any role, Forbidden without enough."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        role = self.role(session, collection)
        if role is None:
            raise NotFound(f"No collection named {collection.name!r}")
        needed = ACTIONS[action]
        if role_rank(role) < role_rank(needed):
            raise Forbidden(
                f"You are a {role} of {collection.name!r}; to {action} it you need the {needed} role"
            )
        return role

    def visible_video(self, video_id_column) -> ColumnElement[bool]:
        """A condition that a video (its id column) is in a collection this user may see."""
        return exists(
            select(CollectionVideo.video_id)
            .join(Collection, Collection.id == CollectionVideo.collection_id)
            .where(CollectionVideo.video_id == video_id_column, self.visible())
        )

    def own_conversations(self) -> ColumnElement[bool]:
        """Conversations are private to the user who had them, whoever owns the collection."""
        return Conversation.owner == self.user

    def own_jobs(self) -> ColumnElement[bool]:
        """Ingest jobs this user may list and retry: the ones they started."""
        return IngestJob.owner == self.user

    def creator(self) -> str:
        """The owner recorded on a collection this user creates."""
        return self.user
