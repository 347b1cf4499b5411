"""The catalog schema (SQLAlchemy 2).

One schema for personal and shared mode: ``owner`` sits on collections and
conversations from the start, so the hub service can add members, invites and quotas
in the same database without changing what existing rows mean.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

CHUNK_NAMESPACE = uuid.UUID("6f1c3d6e-9c0f-4f7e-9a61-5b1f0c2d7a10")


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunk_uuid(video_id: str, index: int) -> str:
    """Chunk ids are stable: the same (video, index) always gives the same id."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{video_id}:{index}"))


def vector_id(chunk_id: str) -> int:
    """The FAISS id of a chunk: 63 bits of its UUID, so it is stable and positive."""
    return uuid.UUID(chunk_id).int >> 65


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Collection(Base):
    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_collection_owner_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    # instructor, subject, semester, tags (list of str)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # course terms and names, given to speech recognition as hints (a list of str)
    glossary: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    links: Mapped[list[CollectionVideo]] = relationship(
        back_populates="collection", cascade="all, delete-orphan"
    )


class Video(Base):
    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_key: Mapped[str] = mapped_column(String(512), unique=True)
    url: Mapped[str] = mapped_column(Text)
    webpage_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    uploader: Mapped[str | None] = mapped_column(String(255), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    # where the duration came from: "source", "media", "captions" or "transcript"
    duration_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    upload_date: Mapped[str | None] = mapped_column(String(16), nullable=True)
    thumbnail: Mapped[str | None] = mapped_column(Text, nullable=True)
    chapters: Mapped[list] = mapped_column(JSON, default=list)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    # "captions" or "asr" once transcribed
    transcript_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # "pending", "ready", "failed"
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    links: Mapped[list[CollectionVideo]] = relationship(back_populates="video", cascade="all, delete-orphan")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="video", cascade="all, delete-orphan", order_by="Segment.start"
    )
    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="video", cascade="all, delete-orphan", order_by="Chunk.index"
    )


class CollectionVideo(Base):
    __tablename__ = "collection_videos"

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="links")
    video: Mapped[Video] = relationship(back_populates="links")


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_video_start", "video_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[list | None] = mapped_column(JSON, nullable=True)

    video: Mapped[Video] = relationship(back_populates="segments")


class Correction(Base):
    """A person's fix of one transcript line, kept apart from the segments so that it
    is applied again over a new transcript (matched by the line's start time)."""

    __tablename__ = "corrections"
    __table_args__ = (UniqueConstraint("video_id", "start", name="uq_correction_video_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    original: Mapped[str] = mapped_column(Text)  # the line as recognised, for review
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("video_id", "index", name="uq_chunk_video_index"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # chunk_uuid(video, index)
    vector_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    chapter: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_count: Mapped[int] = mapped_column(Integer, default=0)

    video: Mapped[Video] = relationship(back_populates="chunks")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    collection_id: Mapped[str | None] = mapped_column(
        ForeignKey("collections.id", ondelete="SET NULL"), nullable=True, index=True
    )
    video_id: Mapped[str | None] = mapped_column(ForeignKey("videos.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    captions_mode: Mapped[str] = mapped_column(String(16), default="auto")
    # queued, fetching, transcribing, chunking, embedding, indexing, done, failed
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)  # stage -> seconds
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    transcript_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # "host:pid" of the process running it, so a crashed ingest can be told from a live one
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str] = mapped_column(Text, default="New conversation")
    # scope: one collection, or a set of videos (never both)
    collection_id: Mapped[str | None] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), nullable=True, index=True
    )
    video_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.position"
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # "user" or "assistant"
    content: Mapped[str] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "llm" / "extractive"
    model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    usage: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # retrieval trace: query, chunk ids, scores, index generation, flags
    trace: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    citations: Mapped[list[Citation]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Citation.n"
    )


class Citation(Base):
    __tablename__ = "citations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    chunk_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    video_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    text: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(Text, default="")

    message: Mapped[Message] = relationship(back_populates="citations")
