"""A member's own conversations on shared collections: list, read, rename, delete.

The service's ``ask`` records each question and answer in a conversation owned by the
caller (the kernel's ``Conversations``, with ``RoleAccess``). These routes give them back
to the same caller only: nobody else's conversation is ever listed or found (not even by
a hub admin or the collection's owner, because a member's questions are their own), and
none on a collection the caller can no longer read (a removed member's conversations
stay in the database but are not shown while they hold no role there).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from vidrag_kernel.catalog import Collection, Conversation
from vidrag_kernel.errors import NotFound

from .deps import User


class TitleIn(BaseModel):
    title: str


def router(service) -> APIRouter:
    """The conversation routes of ``service`` (a ``vidrag_hub.app.Service``)."""
    api = APIRouter(prefix=service.settings.prefix + "api", tags=["conversations"])

    def _readable(s, lib) -> set[str]:
        # collection ids the caller may read now (own, granted, or through a group)
        return set(s.scalars(select(Collection.id).where(lib.ctx.access.visible())))

    def _mine(lib, conversation_id: str) -> None:
        """The conversation is the caller's and about a collection they may read, else NotFound."""
        with service.catalog.session() as s:
            row = s.scalar(
                select(Conversation).where(
                    Conversation.id == conversation_id, lib.ctx.access.own_conversations()
                )
            )
            if row is None or row.collection_id not in _readable(s, lib):
                raise NotFound(f"No conversation with id {conversation_id!r}")

    @api.get("/conversations")
    def list_conversations(user: User, collection_id: str | None = None) -> list[dict]:
        """The caller's conversations on shared collections, most recent first (optionally
        of one collection); without messages (read one for those)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            readable = _readable(s, lib)
        if collection_id is not None and collection_id not in readable:
            raise NotFound(f"No collection with id {collection_id!r}")
        infos = lib.conversations.list(collection_id)
        return [c.to_dict() for c in infos if c.collection_id in readable]

    @api.get("/conversations/{conversation_id}")
    def read_conversation(user: User, conversation_id: str) -> dict:
        """One of the caller's conversations with its messages, citations and traces."""
        lib = service.library(user)
        _mine(lib, conversation_id)
        return lib.conversations.get(conversation_id).to_dict()

    @api.patch("/conversations/{conversation_id}")
    def rename_conversation(user: User, conversation_id: str, body: TitleIn) -> dict:
        lib = service.library(user)
        _mine(lib, conversation_id)
        return lib.conversations.rename(conversation_id, body.title).to_dict()

    @api.delete("/conversations/{conversation_id}")
    def delete_conversation(user: User, conversation_id: str) -> dict:
        """Delete one of the caller's conversations with its messages."""
        lib = service.library(user)
        _mine(lib, conversation_id)
        lib.conversations.delete(conversation_id)
        return {"deleted": conversation_id}

    return api
