"""The service's tables, beside the kernel catalog in the same database.

Grants, invites (and each invitee's answer) and share links. They refer to kernel
collections by id without a foreign key constraint: the kernel's SQLite migrations
rebuild tables in batch mode, and a cascading key from here would let such a rebuild
delete every grant. The service removes a collection's rows itself when it deletes the
collection (``sharing.forget_collection``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vidrag_kernel.catalog.models import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceBase(DeclarativeBase):
    """The service's own metadata, migrated by its own Alembic environment."""


class Grant(ServiceBase):
    """A role on a collection for a user or a JupyterHub group (highest grant wins)."""

    __tablename__ = "vidrag_grants"
    __table_args__ = (
        UniqueConstraint("collection_id", "principal_kind", "principal", name="uq_vidrag_grant"),
        Index("ix_vidrag_grants_principal", "principal_kind", "principal"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(String(36), index=True)
    #: "user" or "group"
    principal_kind: Mapped[str] = mapped_column(String(8))
    principal: Mapped[str] = mapped_column(String(255))
    #: "viewer" or "editor" (the owner is the collection's ``owner`` column)
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Invite(ServiceBase):
    """A pending grant offered to a user, to each member of a group, or to an e-mail address.

    An e-mail invite carries a token (only its hash is kept): the hub knows no e-mail
    addresses, so whoever logs in and presents the token answers it.
    """

    __tablename__ = "vidrag_invites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(String(36), index=True)
    #: "user", "group" or "email"
    kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InviteAnswer(ServiceBase):
    """One invitee's accept or decline (a group invite has one per member who answered)."""

    __tablename__ = "vidrag_invite_answers"
    __table_args__ = (UniqueConstraint("invite_id", "user", name="uq_vidrag_invite_answer"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    invite_id: Mapped[str] = mapped_column(String(36), index=True)
    user: Mapped[str] = mapped_column(String(255))
    #: "accepted" or "declined"
    answer: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShareLink(ServiceBase):
    """A share link: a random token (only its SHA-256 kept), a role capped at editor, an
    expiry (required), an optional use limit and a redemption counter; revocable."""

    __tablename__ = "vidrag_share_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
