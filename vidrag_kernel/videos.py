"""Videos in the catalog: listing, tags, membership in collections, transcripts, deletion."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from .access import ACTIONS
from .catalog import Collection, CollectionVideo, Video
from .catalog import Segment as SegmentRow
from .context import Context
from .corrections import CorrectionInfo
from .errors import Forbidden, InvalidInput, NotFound
from .links import deep_link
from .transcripts import render


@dataclass
class VideoInfo:
    """A video as callers see it."""

    id: str
    title: str
    url: str
    source_key: str
    webpage_url: str | None = None
    media_url: str | None = None  # direct media a browser can play, when known
    uploader: str | None = None
    duration: float | None = None
    #: where ``duration`` came from: "source", "media", "captions" or "transcript"
    duration_source: str | None = None
    upload_date: str | None = None
    thumbnail: str | None = None
    chapters: list = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    status: str = "pending"
    transcript_source: str | None = None
    collections: list[str] = field(default_factory=list)
    chunk_count: int = 0
    created_at: datetime | None = None

    @property
    def page_url(self) -> str:
        return self.webpage_url or self.url

    def link(self, seconds: float) -> str:
        """A link that opens this video at ``seconds``."""
        return deep_link(self.page_url, seconds, source_key=self.source_key)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


def video_info(row: Video, visible: set[str] | None = None) -> VideoInfo:
    """``row`` as a ``VideoInfo``; ``collections`` names only the collections whose ids are
    in ``visible`` (the ones the caller may see), so a video shared into someone else's
    collection does not reveal that collection's name. None names them all."""
    links = [link for link in row.links if visible is None or link.collection_id in visible]
    return VideoInfo(
        id=row.id,
        title=row.title,
        url=row.url,
        source_key=row.source_key,
        webpage_url=row.webpage_url,
        media_url=row.media_url,
        uploader=row.uploader,
        duration=row.duration,
        duration_source=row.duration_source,
        upload_date=row.upload_date,
        thumbnail=row.thumbnail,
        chapters=list(row.chapters or []),
        tags=list(row.tags or []),
        status=row.status,
        transcript_source=row.transcript_source,
        collections=sorted(link.collection.name for link in links),
        chunk_count=len(row.chunks),
        created_at=row.created_at,
    )


def purge_videos(ctx: Context, video_ids: list[str]) -> None:
    """Delete videos everywhere: index vectors in every collection, catalog rows, media files."""
    from .indexing import vector_ids_of, write_chunks

    with ctx.catalog.session() as s:
        memberships = s.execute(
            select(CollectionVideo.collection_id, CollectionVideo.video_id).where(
                CollectionVideo.video_id.in_(video_ids)
            )
        ).all()
    by_collection: dict[str, list[str]] = {}
    for collection_id, video_id in memberships:
        by_collection.setdefault(collection_id, []).append(video_id)
    # vectors go first: a chunk row without vectors is harmless, a vector without a row is not shown
    for collection_id, vids in by_collection.items():
        write_chunks(ctx, collection_id, remove_ids=vector_ids_of(ctx, vids))
    with ctx.catalog.session() as s:
        for row in s.scalars(select(Video).where(Video.id.in_(video_ids))):
            s.delete(row)
    for vid in video_ids:
        shutil.rmtree(ctx.layout.media_dir(vid), ignore_errors=True)


class Videos:
    """The current user's videos (those in their collections)."""

    def __init__(self, ctx: Context, collections) -> None:
        self._ctx = ctx
        self._collections = collections

    def _visible(self, s) -> set[str]:
        """Ids of the collections the user may see (what ``VideoInfo.collections`` may name)."""
        return set(s.scalars(select(Collection.id).where(self._ctx.access.visible())))

    def _owned(self, s, video_id: str, action: str = "read") -> Video:
        """The video, if it is in a collection the user may see; for ``edit`` (tags,
        deletion, which reach every collection holding the video) the user must be allowed
        to edit every collection that holds it."""
        access = self._ctx.access
        row = s.scalar(select(Video).where(Video.id == video_id, access.visible_video(Video.id)))
        if row is None:
            raise NotFound(f"No video with id {video_id!r}")
        if action != "read":
            holders = s.scalars(
                select(Collection)
                .join(CollectionVideo, CollectionVideo.collection_id == Collection.id)
                .where(CollectionVideo.video_id == video_id)
            )
            for collection in holders:
                if not access.allows(s, collection, action):
                    role = access.role(s, collection)
                    held = f"you are a {role} there" if role else "you hold no role there"
                    raise Forbidden(
                        f"{row.title!r} is in {collection.name!r}, and changing it needs the "
                        f"{ACTIONS[action]} role ({held}): remove it from your own collections instead"
                    )
        return row

    def list(
        self, collection: str | None = None, *, tags: list[str] | None = None, search: str | None = None
    ) -> list[VideoInfo]:
        """Videos of one collection (by name or id), or of all the user's collections."""
        with self._ctx.catalog.session() as s:
            q = (
                select(Video)
                .join(CollectionVideo, CollectionVideo.video_id == Video.id)
                .join(Collection, Collection.id == CollectionVideo.collection_id)
                .where(self._ctx.access.visible())
            )
            if collection is not None:
                q = q.where(Collection.id == self._collections.resolve(s, collection).id)
            rows = s.scalars(q.distinct().order_by(Video.created_at)).all()
            visible = self._visible(s)
            infos = [video_info(r, visible) for r in rows]
        if tags:
            wanted = set(tags)
            infos = [v for v in infos if wanted & set(v.tags)]
        if search:
            needle = search.lower()
            infos = [v for v in infos if needle in f"{v.title} {v.uploader or ''} {' '.join(v.tags)}".lower()]
        return infos

    def get(self, video_id: str) -> VideoInfo:
        with self._ctx.catalog.session() as s:
            return video_info(self._owned(s, video_id), self._visible(s))

    def delete(self, video_ids: str | list[str]) -> int:
        """Delete videos with their chunks, vectors and files. Returns how many."""
        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        with self._ctx.catalog.session() as s:
            for vid in ids:
                self._owned(s, vid, "edit")
        purge_videos(self._ctx, ids)
        return len(ids)

    def set_tags(self, video_id: str, tags: list[str]) -> VideoInfo:
        clean = sorted({t.strip() for t in tags if t and t.strip()})
        with self._ctx.catalog.session() as s:
            row = self._owned(s, video_id, "edit")
            row.tags = clean
            s.flush()
            return video_info(row, self._visible(s))

    def add_to(self, collection: str, video_ids: str | list[str]) -> int:
        """Add videos to another collection too (they are re-indexed there)."""
        from .indexing import add_videos_to_index

        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        with self._ctx.catalog.session() as s:
            target = self._collections.resolve(s, collection, "edit")
            added = []
            for vid in ids:
                self._owned(s, vid)
                if not s.get(CollectionVideo, (target.id, vid)):
                    s.add(CollectionVideo(collection_id=target.id, video_id=vid))
                    added.append(vid)
            target_id = target.id
        if added:
            add_videos_to_index(self._ctx, target_id, added)
        return len(added)

    def remove_from(self, collection: str, video_ids: str | list[str]) -> int:
        """Take videos out of one collection; a video left in none is deleted."""
        from .indexing import vector_ids_of, write_chunks

        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        with self._ctx.catalog.session() as s:
            target = self._collections.resolve(s, collection, "edit")
            target_id = target.id
            present = [vid for vid in ids if s.get(CollectionVideo, (target_id, vid))]
        if not present:
            return 0
        write_chunks(self._ctx, target_id, remove_ids=vector_ids_of(self._ctx, present))
        orphans = []
        with self._ctx.catalog.session() as s:
            for vid in present:
                s.delete(s.get(CollectionVideo, (target_id, vid)))
            s.flush()
            for vid in present:
                if not s.scalar(select(CollectionVideo).where(CollectionVideo.video_id == vid)):
                    orphans.append(vid)
        if orphans:
            purge_videos(self._ctx, orphans)
        return len(present)

    def move(self, video_ids: str | list[str], source: str, target: str) -> int:
        """Move videos from one collection to another."""
        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        self.add_to(target, ids)
        return self.remove_from(source, ids)

    def segments(self, video_id: str) -> list[SegmentRow]:
        with self._ctx.catalog.session() as s:
            self._owned(s, video_id)
            return list(
                s.scalars(
                    select(SegmentRow).where(SegmentRow.video_id == video_id).order_by(SegmentRow.start)
                )
            )

    def correct(self, video_id: str, line: int | float, text: str) -> CorrectionInfo:
        """Correct one transcript line: ``line`` is its position (int, from 0, as in
        ``segments``) or its start time (float seconds). Needs the editor role on every
        collection holding the video. The video's chunks and vectors are rebuilt from the
        corrected transcript (no new transcription), and the correction is applied again
        over any later transcript of the video. Correcting a line back to the recognised
        text removes the correction."""
        from .corrections import rebuild, record

        with self._ctx.catalog.session() as s:
            row = self._owned(s, video_id, "edit")
            info, changed = record(s, row, line, text, self._ctx.owner)
        if changed:
            rebuild(self._ctx, video_id)
        return info

    def corrections(self, video_id: str) -> list[CorrectionInfo]:
        """The video's corrected lines (who changed what), earliest first."""
        from .corrections import corrections_of

        with self._ctx.catalog.session() as s:
            self._owned(s, video_id)
        return [
            CorrectionInfo(c.video_id, c.start, c.end, c.original, c.text, c.author, c.created_at)
            for c in corrections_of(self._ctx, video_id)
        ]

    def media_path(self, video_id: str) -> Path | None:
        """The local file this video can be played from: the original of a local file, or
        the audio ingest downloaded. None when nothing is stored locally."""
        with self._ctx.catalog.session() as s:
            row = self._owned(s, video_id)
            original = Path(row.url) if row.source_key.startswith("file:") else None
        if original is not None and original.is_file():
            return original
        folder = self._ctx.layout.media_dir(video_id)
        files = sorted(folder.glob("audio.*")) if folder.is_dir() else []
        return next((f for f in files if f.is_file() and not f.name.endswith(".part")), None)

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        """The transcript as txt, json, srt or vtt."""
        info = self.get(video_id)
        segments = self.segments(video_id)
        if not segments and info.status != "ready":
            raise InvalidInput(f"Video {video_id} has no transcript yet (status: {info.status})")
        meta = {"video_id": info.id, "url": info.page_url, "source": info.transcript_source}
        return render(segments, fmt, title=info.title, meta=meta)
