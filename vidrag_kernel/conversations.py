"""Conversations: questions and answers kept with their sources, per user.

A conversation is scoped to one collection or to a set of videos (never both; neither
means all the user's collections). Every answer is stored with its citations, the
retrieval trace (query, chunk ids, scores, index generations), the model, token usage
and response time, so it can be shown again, exported, or reproduced.

Everything returned is a plain dataclass (no database handles), for notebooks, the CLI
and the Panel dashboards alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from .answer.types import Answer, Citation
from .catalog import Citation as CitationRow
from .catalog import Collection, Conversation, Message, Video
from .catalog.models import utcnow
from .context import Context
from .errors import InvalidInput, NotFound

DEFAULT_TITLE = "New conversation"


@dataclass
class MessageInfo:
    """One message: a user's question or an assistant's answer with its sources."""

    id: str
    role: str
    content: str
    citations: list[Citation] = field(default_factory=list)
    mode: str | None = None
    model: str | None = None
    usage: dict | None = None
    latency_ms: float | None = None
    trace: dict | None = None
    created_at: datetime | None = None

    @property
    def flagged(self) -> list[str]:
        return list((self.trace or {}).get("flagged") or [])

    @property
    def no_answer(self) -> bool:
        return bool((self.trace or {}).get("no_answer"))

    @property
    def fallback_reason(self) -> str | None:
        return (self.trace or {}).get("fallback_reason")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


@dataclass
class ConversationInfo:
    """A conversation; ``messages`` is filled by ``Conversations.get``."""

    id: str
    title: str
    collection_id: str | None
    video_ids: list[str] | None
    created_at: datetime | None
    updated_at: datetime | None
    message_count: int = 0
    collection_name: str | None = None
    messages: list[MessageInfo] = field(default_factory=list)

    @property
    def scope(self) -> str:
        """A human description of what the conversation searches."""
        if self.video_ids:
            return f"{len(self.video_ids)} selected video(s)"
        if self.collection_id:
            return f"collection {self.collection_name or self.collection_id}"
        return "all collections"

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("created_at", "updated_at"):
            d[key] = d[key].isoformat() if d[key] else None
        for m in d["messages"]:
            m["created_at"] = m["created_at"].isoformat() if m["created_at"] else None
        return d


def _citation(row: CitationRow) -> Citation:
    return Citation(
        n=row.n,
        video_id=row.video_id or "",
        title=row.title,
        url=row.url,
        start=row.start,
        end=row.end,
        score=row.score,
        text=row.text,
        link=row.link,
        chunk_id=row.chunk_id,
    )


def _message(row: Message) -> MessageInfo:
    return MessageInfo(
        id=row.id,
        role=row.role,
        content=row.content,
        citations=[_citation(c) for c in row.citations],
        mode=row.mode,
        model=row.model,
        usage=row.usage,
        latency_ms=row.latency_ms,
        trace=row.trace,
        created_at=row.created_at,
    )


class Conversations:
    """List, show, create, rename, delete and export the current user's conversations."""

    def __init__(self, ctx: Context, collections) -> None:
        self._ctx = ctx
        self._collections = collections

    # -- lookups ---------------------------------------------------------------------------
    def _row(self, s, conversation_id: str) -> Conversation:
        row = s.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id, self._ctx.access.own_conversations()
            )
        )
        if row is None:
            raise NotFound(f"No conversation with id {conversation_id!r}")
        return row

    def _info(self, s, row: Conversation, with_messages: bool = False) -> ConversationInfo:
        count = s.scalar(select(func.count(Message.id)).where(Message.conversation_id == row.id))
        name = (
            s.scalar(select(Collection.name).where(Collection.id == row.collection_id))
            if row.collection_id
            else None
        )
        return ConversationInfo(
            id=row.id,
            title=row.title,
            collection_id=row.collection_id,
            video_ids=list(row.video_ids) if row.video_ids else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            message_count=int(count or 0),
            collection_name=name,
            messages=[_message(m) for m in row.messages] if with_messages else [],
        )

    # -- public API ----------------------------------------------------------------------
    def list(self, collection: str | None = None) -> list[ConversationInfo]:
        """The user's conversations, most recently active first (optionally of one collection)."""
        with self._ctx.catalog.session() as s:
            q = select(Conversation).where(self._ctx.access.own_conversations())
            if collection is not None:
                q = q.where(Conversation.collection_id == self._collections.resolve(s, collection).id)
            rows = s.scalars(q.order_by(Conversation.updated_at.desc(), Conversation.created_at.desc()))
            return [self._info(s, r) for r in rows]

    def get(self, conversation_id: str) -> ConversationInfo:
        """One conversation with all its messages, citations and traces."""
        with self._ctx.catalog.session() as s:
            return self._info(s, self._row(s, conversation_id), with_messages=True)

    def create(
        self, collection: str | None = None, videos: Sequence[str] | None = None, title: str | None = None
    ) -> ConversationInfo:
        """A new conversation about one collection (name or id) or some videos (ids), not both.

        With neither, it searches all the user's collections.
        """
        if collection is not None and videos:
            raise InvalidInput("A conversation is about one collection or about selected videos, not both")
        with self._ctx.catalog.session() as s:
            collection_id = self._collections.resolve(s, collection).id if collection is not None else None
            video_ids = None
            if videos:
                video_ids = list(dict.fromkeys(videos))
                found = set(
                    s.scalars(
                        select(Video.id).where(
                            Video.id.in_(video_ids), self._ctx.access.visible_video(Video.id)
                        )
                    )
                )
                unknown = [v for v in video_ids if v not in found]
                if unknown:
                    raise NotFound(f"No video with id {unknown[0]!r} in your collections")
            row = Conversation(
                owner=self._ctx.owner,
                title=_title(title) if title else DEFAULT_TITLE,
                collection_id=collection_id,
                video_ids=video_ids,
            )
            s.add(row)
            s.flush()
            return self._info(s, row)

    def rename(self, conversation_id: str, title: str) -> ConversationInfo:
        """Give a conversation a new title."""
        with self._ctx.catalog.session() as s:
            row = self._row(s, conversation_id)
            row.title = _title(title)
            s.flush()
            return self._info(s, row)

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation with its messages and citations."""
        with self._ctx.catalog.session() as s:
            s.delete(self._row(s, conversation_id))

    def export(self, conversation_id: str, fmt: str = "markdown") -> str:
        """The conversation as Markdown (``markdown``/``md``) or a replay notebook (``ipynb``)."""
        from .exports import export_conversation

        return export_conversation(
            self.get(conversation_id), fmt, home=str(self._ctx.settings.home), owner=self._ctx.owner
        )

    # -- used by the answer pipeline -------------------------------------------------------
    def history(self, conversation_id: str, limit: int) -> list[dict]:
        """The last ``limit`` messages as ``{"role", "content"}``, oldest first."""
        if limit <= 0:
            return []
        with self._ctx.catalog.session() as s:
            self._row(s, conversation_id)
            rows = s.execute(
                select(Message.role, Message.content)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.position.desc())
                .limit(limit)
            ).all()
        return [{"role": r, "content": c} for r, c in reversed(rows)]

    def add_turn(self, conversation_id: str, question: str, answer: Answer) -> str:
        """Store a question and its answer; returns the answer's message id."""
        with self._ctx.catalog.session() as s:
            conv = self._row(s, conversation_id)
            last = s.scalar(
                select(func.max(Message.position)).where(Message.conversation_id == conversation_id)
            )
            position = -1 if last is None else last
            s.add(Message(conversation_id=conv.id, position=position + 1, role="user", content=question))
            reply = Message(
                conversation_id=conv.id,
                position=position + 2,
                role="assistant",
                content=answer.text,
                mode=answer.mode,
                model=answer.model,
                usage=answer.usage,
                latency_ms=answer.latency_ms,
                trace={
                    **answer.trace,
                    "flagged": answer.flagged,
                    "no_answer": answer.no_answer,
                    "fallback_reason": answer.fallback_reason,
                },
            )
            reply.citations = [
                CitationRow(
                    n=c.n,
                    chunk_id=c.chunk_id,
                    video_id=c.video_id,
                    title=c.title,
                    url=c.url,
                    start=c.start,
                    end=c.end,
                    score=c.score,
                    text=c.text,
                    link=c.link,
                )
                for c in answer.citations
            ]
            s.add(reply)
            if conv.title == DEFAULT_TITLE:
                conv.title = _title(question)
            # bump the conversation in "most recent first" listings even if only children changed
            conv.updated_at = utcnow()
            s.flush()
            return reply.id


def _title(text: str) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise InvalidInput("A conversation title cannot be empty")
    return text if len(text) <= 80 else text[:77].rstrip() + "..."
