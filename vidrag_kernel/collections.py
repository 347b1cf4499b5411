"""Collections: named sets of videos with course metadata, owned by a user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .catalog import Collection, CollectionVideo, Video
from .context import Context
from .errors import Conflict, InvalidInput, NotFound

DEFAULT_NAME = "Uncategorized"
META_KEYS = ("instructor", "subject", "semester", "tags")


@dataclass
class CollectionInfo:
    """A collection as callers see it (no database handles)."""

    id: str
    name: str
    owner: str
    description: str = ""
    instructor: str | None = None
    subject: str | None = None
    semester: str | None = None
    tags: list[str] = field(default_factory=list)
    is_default: bool = False
    video_count: int = 0
    total_duration: float = 0.0
    role: str = "owner"
    created_at: datetime | None = None
    #: the library holding it: "local" (this server's data) or "shared" (the vidrag service)
    library: str = "local"
    #: course terms and names given to speech recognition when its videos are transcribed
    glossary: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


def _clean_meta(meta: dict) -> dict:
    out = {}
    for key in META_KEYS:
        value = meta.get(key)
        if key == "tags":
            out[key] = sorted({str(t).strip() for t in (value or []) if str(t).strip()})
        elif value is not None and str(value).strip():
            out[key] = str(value).strip()
    return out


GLOSSARY_TERMS = 200  # whisper reads at most ~220 prompt tokens; more terms would be cut anyway


def clean_glossary(glossary: str | Sequence[str] | None) -> list[str]:
    """Course terms from a comma- or newline-separated string or a list: stripped,
    duplicates dropped (first spelling kept), order kept."""
    if glossary is None:
        return []
    if isinstance(glossary, str):
        glossary = glossary.replace("\n", ",").split(",")
    out: list[str] = []
    seen: set[str] = set()
    for term in glossary:
        term = " ".join(str(term).split())
        if term and term.lower() not in seen:
            if len(term) > 100:
                raise InvalidInput(f"Glossary terms are at most 100 characters: {term[:40]!r}…")
            seen.add(term.lower())
            out.append(term)
    if len(out) > GLOSSARY_TERMS:
        raise InvalidInput(f"A glossary holds at most {GLOSSARY_TERMS} terms ({len(out)} given)")
    return out


def _quote(text: str) -> str:
    """``text`` as one shell word, for commands printed in messages."""
    import shlex

    return shlex.quote(text)


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A collection needs a name")
    if len(name) > 200:
        raise InvalidInput("Collection names are at most 200 characters")
    return name


class Collections:
    """Create, list, change and delete the current user's collections."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._catalog = ctx.catalog
        self._access = ctx.access
        self.owner = ctx.owner

    # -- lookups used across the kernel -------------------------------------------------
    def resolve(self, session: Session, ref: str | None, action: str = "read") -> Collection:
        """The collection named or identified by ``ref`` (None = the user's default
        collection), checked with the access policy for ``action`` (read, edit, manage).

        A name matches the user's own collection first, then one shared with them; two
        shared collections of the same name need their id.
        """
        row = self._default(session) if ref is None else self._find(session, ref)
        self._access.require(session, row, action)
        return row

    def _find(self, session: Session, ref: str) -> Collection:
        visible = self._access.visible()
        row = session.scalar(select(Collection).where(visible, Collection.id == ref))
        if row is not None:
            return row
        rows = list(session.scalars(select(Collection).where(visible, Collection.name == ref)))
        own = [r for r in rows if r.owner == self.owner]
        if own or len(rows) == 1:
            return (own or rows)[0]
        if rows:
            ids = ", ".join(f"{r.id} (owner {r.owner})" for r in rows)
            raise Conflict(f"Several collections shared with you are called {ref!r}: use an id ({ids})")
        raise NotFound(
            f"No collection named {ref!r}. Create it with: vidrag collections create {_quote(ref)}"
        )

    def _default(self, session: Session) -> Collection:
        mine = Collection.owner == self.owner
        row = session.scalar(select(Collection).where(mine, Collection.is_default))
        if row is None:
            row = session.scalar(select(Collection).where(mine, Collection.name == DEFAULT_NAME))
        if row is None:
            row = Collection(
                owner=self.owner, name=DEFAULT_NAME, description="Videos not in a course yet", meta={}
            )
            row.is_default = True
            session.add(row)
            session.flush()
        return row

    def info(self, session: Session, row: Collection) -> CollectionInfo:
        count, total = session.execute(
            select(func.count(Video.id), func.coalesce(func.sum(Video.duration), 0.0))
            .join(CollectionVideo, CollectionVideo.video_id == Video.id)
            .where(CollectionVideo.collection_id == row.id)
        ).one()
        meta = row.meta or {}
        return CollectionInfo(
            id=row.id,
            name=row.name,
            owner=row.owner,
            description=row.description or "",
            instructor=meta.get("instructor"),
            subject=meta.get("subject"),
            semester=meta.get("semester"),
            tags=list(meta.get("tags") or []),
            is_default=row.is_default,
            video_count=int(count),
            total_duration=float(total or 0.0),
            role=self._access.role(session, row) or "none",
            created_at=row.created_at,
            glossary=list(row.glossary or []),
        )

    # -- public API ----------------------------------------------------------------------
    def create(
        self, name: str, description: str = "", *, glossary: str | Sequence[str] | None = None, **meta
    ) -> CollectionInfo:
        """Create a collection; ``meta`` may hold instructor, subject, semester, tags;
        ``glossary`` lists course terms and names ("Wegener, Pangaea, slab pull") that
        speech recognition is told to expect in its videos."""
        name = _name(name)
        terms = clean_glossary(glossary)
        unknown = set(meta) - set(META_KEYS)
        if unknown:
            raise InvalidInput(f"Unknown collection fields: {', '.join(sorted(unknown))}")
        with self._catalog.session() as s:
            owner = self._access.creator()
            if s.scalar(select(Collection).where(Collection.owner == owner, Collection.name == name)):
                raise Conflict(f"A collection named {name!r} already exists")
            row = Collection(owner=owner, name=name, description=description or "", meta=_clean_meta(meta))
            row.is_default = False
            row.glossary = terms
            s.add(row)
            s.flush()
            return self.info(s, row)

    def get_or_create(
        self, name: str, description: str = "", *, glossary: str | Sequence[str] | None = None, **meta
    ) -> CollectionInfo:
        """The collection called ``name``, created if missing."""
        try:
            return self.get(name)
        except NotFound:
            return self.create(name, description, glossary=glossary, **meta)

    def get(self, ref: str | None = None) -> CollectionInfo:
        """One collection by name or id (None = the default "Uncategorized")."""
        with self._catalog.session() as s:
            return self.info(s, self.resolve(s, ref))

    def list(self, search: str | None = None) -> list[CollectionInfo]:
        """The user's collections, optionally filtered by a substring of name, metadata or tags."""
        with self._catalog.session() as s:
            self._default(s)
            rows = s.scalars(select(Collection).where(self._access.visible()).order_by(Collection.name))
            infos = [self.info(s, r) for r in rows]
        if search:
            needle = search.lower()
            infos = [
                i
                for i in infos
                if needle
                in " ".join(
                    [i.name, i.description, i.instructor or "", i.subject or "", i.semester or "", *i.tags]
                ).lower()
            ]
        return infos

    def update(
        self,
        ref: str,
        *,
        name: str | None = None,
        description: str | None = None,
        glossary: str | Sequence[str] | None = None,
        **meta,
    ) -> CollectionInfo:
        """Rename or change description, glossary and metadata (given fields only; an
        empty glossary clears it). A new glossary applies to videos transcribed from now on."""
        unknown = set(meta) - set(META_KEYS)
        if unknown:
            raise InvalidInput(f"Unknown collection fields: {', '.join(sorted(unknown))}")
        with self._catalog.session() as s:
            # renaming is the owner's; editors change description and metadata
            row = self.resolve(s, ref, "manage" if name is not None else "edit")
            if name is not None:
                name = _name(name)
                clash = s.scalar(
                    select(Collection).where(
                        Collection.owner == row.owner, Collection.name == name, Collection.id != row.id
                    )
                )
                if clash:
                    raise Conflict(f"A collection named {name!r} already exists")
                row.name = name
            if description is not None:
                row.description = description
            if glossary is not None:
                row.glossary = clean_glossary(glossary)
            if meta:
                row.meta = _clean_meta({**(row.meta or {}), **meta})
            s.flush()
            return self.info(s, row)

    def delete(self, ref: str, *, delete_videos: bool = True) -> list[str]:
        """Delete a collection and its index.

        Videos that belong to no other collection are deleted with it (their chunks and
        media too) unless ``delete_videos`` is False, in which case they move to the
        default collection. Returns the ids of the videos deleted.
        """
        from .videos import purge_videos

        with self._catalog.session() as s:
            row = self.resolve(s, ref, "manage")
            collection_id = row.id
            video_ids = [link.video_id for link in row.links]
            orphans = [
                vid
                for vid in video_ids
                if s.scalar(
                    select(func.count()).select_from(CollectionVideo).where(CollectionVideo.video_id == vid)
                )
                == 1
            ]
            s.delete(row)
            s.flush()
            if not delete_videos and orphans:
                default = self._default(s)
                for vid in orphans:
                    s.add(CollectionVideo(collection_id=default.id, video_id=vid))
        from .indexing import add_videos_to_index, destroy_index

        destroy_index(self._ctx, collection_id)
        if delete_videos and orphans:
            purge_videos(self._ctx, orphans)
            return orphans
        if orphans:
            # the moved videos need vectors in the default collection's index
            add_videos_to_index(self._ctx, self.get(None).id, orphans)
        return []
