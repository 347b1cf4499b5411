"""Roles on shared collections: the kernel's ``Access`` policy, extended with grants.

A user's role on a collection is the highest of:

- owner, when the collection's ``owner`` column names them;
- each grant to the user, and each grant to a JupyterHub group they are in now (the
  groups the hub reported on this request, so leaving a group takes effect at once);
- owner of everything, for hub admins (they administer the service).

A scheduled run's token (``HubUser.collection`` set) sees its one collection only.

The kernel asks this policy for every collection, video, job and conversation, so the
service's endpoints get the same checks the kernel makes in personal mode.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import Session

from vidrag_kernel.access import Access, strongest
from vidrag_kernel.catalog import Collection

from .auth import HubUser
from .models import Grant


class RoleAccess(Access):
    """The service's policy for one caller (built per request from the hub's answer)."""

    def __init__(self, user: HubUser) -> None:
        super().__init__(user.name)
        self.hub_user = user
        self.groups = sorted(user.groups)
        self.admin = user.admin

    def _grant_matches(self) -> ColumnElement[bool]:
        mine = and_(Grant.principal_kind == "user", Grant.principal == self.user)
        if not self.groups:
            return mine
        return or_(mine, and_(Grant.principal_kind == "group", Grant.principal.in_(self.groups)))

    def visible(self) -> ColumnElement[bool]:
        only = self.hub_user.collection
        if self.admin:
            return true() if only is None else Collection.id == only
        granted = exists(select(Grant.id).where(Grant.collection_id == Collection.id, self._grant_matches()))
        mine = or_(Collection.owner == self.user, granted)
        return mine if only is None else and_(Collection.id == only, mine)

    def role(self, session: Session, collection: Collection) -> str | None:
        if self.hub_user.collection is not None and collection.id != self.hub_user.collection:
            return None
        if self.admin or collection.owner == self.user:
            return "owner"
        roles = session.scalars(
            select(Grant.role).where(Grant.collection_id == collection.id, self._grant_matches())
        )
        return strongest(roles)

    def grants_for(self, session: Session, collection_id: str) -> list[Grant]:
        """The grants through which this user reaches a collection (their own and their groups')."""
        return list(
            session.scalars(select(Grant).where(Grant.collection_id == collection_id, self._grant_matches()))
        )
