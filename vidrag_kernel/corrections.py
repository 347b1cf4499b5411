"""Transcript corrections: a person's fix of a recognised line, kept and re-applied.

A correction is stored apart from the segments (``catalog.Correction``: the line's
times, the text as recognised and the corrected text), so that it outlives the
transcript it was made on: when a video gets a new transcript (an ingest run again, a
retried job), ``apply`` puts every correction over the new segment that covers the
same time, before that transcript is chunked and embedded.

``correct`` changes one line and rebuilds the video's chunks and vectors from the
corrected transcript with the ingest's own stages (chunk, embed, commit): no audio is
read and nothing is transcribed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

from .catalog import Collection, CollectionVideo, Correction, Video
from .catalog import Segment as SegmentRow
from .context import Context
from .errors import InvalidInput, NotFound
from .records import Chapter, MediaInfo, Segment, Transcript

MAX_TEXT = 2000  # characters in one corrected line
#: a correction covers a new segment when they share this much of the shorter one's time
OVERLAP = 0.5
#: seconds: a ``start`` given to ``correct`` picks the line starting this close to it
NEAR = 1.0


@dataclass
class CorrectionInfo:
    """A correction as callers see it."""

    video_id: str
    start: float
    end: float
    original: str
    text: str
    author: str
    created_at: datetime | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


def _info(row: Correction) -> CorrectionInfo:
    return CorrectionInfo(
        row.video_id, row.start, row.end, row.original, row.text, row.author, row.created_at
    )


def _shared(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """The share of the shorter span that the two spans have in common (0 to 1)."""
    common = min(a_end, b_end) - max(a_start, b_start)
    shorter = min(a_end - a_start, b_end - b_start)
    if shorter <= 0:  # an instant: covered when it lies inside the other span
        return 1.0 if common >= 0 else 0.0
    return max(0.0, common) / shorter


def match(segments: Sequence, start: float, end: float) -> int | None:
    """The index of the segment a correction made on [start, end] belongs to: the one
    sharing most time with it, if they share at least ``OVERLAP`` of the shorter."""
    best, best_share = None, OVERLAP - 1e-9
    for i, seg in enumerate(segments):
        share = _shared(seg.start, seg.end, start, end)
        if share > best_share:
            best, best_share = i, share
    return best


def apply(segments: Sequence[Segment], corrections: Sequence) -> tuple[list[Segment], int]:
    """``segments`` with each correction (anything with start, end, text) put over the
    segment it belongs to (its words dropped: their times were for the old text);
    returns the new list and how many segments changed."""
    out = list(segments)
    changed = 0
    for c in corrections:
        i = match(out, c.start, c.end)
        if i is not None and out[i].text.strip() != c.text:
            out[i] = replace(out[i], text=c.text, words=None)
            changed += 1
    return out, changed


def corrections_of(ctx: Context, video_id: str) -> list[Correction]:
    """The stored corrections of a video, earliest line first (no access check)."""
    with ctx.catalog.session() as s:
        return list(
            s.scalars(select(Correction).where(Correction.video_id == video_id).order_by(Correction.start))
        )


def _pick(rows: list[SegmentRow], line: int | float) -> SegmentRow:
    """The line ``line`` names: a position (int, from 0) or a start time (float seconds)."""
    if not rows:
        raise InvalidInput("This video has no transcript lines to correct")
    if isinstance(line, bool) or not isinstance(line, int | float):
        raise InvalidInput("Name the line by its position (a whole number) or its start time in seconds")
    if isinstance(line, int):
        if not 0 <= line < len(rows):
            raise NotFound(f"No line {line}: the transcript has lines 0 to {len(rows) - 1}")
        return rows[line]
    nearest = min(rows, key=lambda r: abs(r.start - line))
    if abs(nearest.start - line) > NEAR:
        raise NotFound(f"No line starts near {line:.2f} s")
    return nearest


def _clean(text: str) -> str:
    text = " ".join(str(text or "").split())
    if not text:
        raise InvalidInput("A corrected line needs some text (to drop a line, correct it to what was said)")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"A corrected line is at most {MAX_TEXT} characters")
    return text


def record(s, video: Video, line: int | float, text: str, author: str) -> tuple[CorrectionInfo, bool]:
    """Store the correction of one line of ``video`` in session ``s`` and change the
    segment; returns it and whether the text changed. Correcting a line back to what was
    recognised removes its correction."""
    text = _clean(text)
    rows = list(
        s.scalars(select(SegmentRow).where(SegmentRow.video_id == video.id).order_by(SegmentRow.start))
    )
    seg = _pick(rows, line)
    existing = list(s.scalars(select(Correction).where(Correction.video_id == video.id)))
    i = match(existing, seg.start, seg.end)
    row = existing[i] if i is not None else None
    changed = seg.text.strip() != text
    original = row.original if row is not None else seg.text.strip()
    if row is None:
        row = Correction(video_id=video.id, start=seg.start, end=seg.end, original=original, text=text)
        s.add(row)
    row.start, row.end, row.text, row.author = seg.start, seg.end, text, author
    seg.text, seg.words = text, None
    s.flush()
    info = _info(row)
    if text == original:
        s.delete(row)
    return info, changed


def rebuild(ctx: Context, video_id: str) -> list[str]:
    """Cut the video's stored (corrected) transcript into chunks again, embed them and
    commit them to every collection holding the video, with no new transcription;
    returns the ids of those collections."""
    from . import stages
    from .indexing import write_chunks

    with ctx.catalog.session() as s:
        video = s.get(Video, video_id)
        if video is None:
            raise NotFound(f"No video with id {video_id!r}")
        rows = list(
            s.scalars(select(SegmentRow).where(SegmentRow.video_id == video_id).order_by(SegmentRow.start))
        )
        collection_ids = list(
            s.scalars(
                select(Collection.id)
                .join(CollectionVideo, CollectionVideo.collection_id == Collection.id)
                .where(CollectionVideo.video_id == video_id)
                .order_by(Collection.created_at)
            )
        )
        chapters = [Chapter(c["title"], c["start"], c.get("end")) for c in video.chapters or []]
        info = MediaInfo(
            video.source_key, video.url, video.title, webpage_url=video.webpage_url, chapters=chapters
        )
        transcript = Transcript(
            [Segment(r.start, r.end, r.text) for r in rows],
            video.language,
            video.duration,
            video.transcript_source or "asr",
        )
        old_ids = [c.vector_id for c in video.chunks]
    settings = ctx.settings
    chunks = stages.chunk(transcript, info.chapters, settings, info.title)
    vectors = stages.embed(chunks, settings)
    prepared = stages.Prepared(
        info, transcript, chunks, vectors, None, None, embedder=stages.embedder_identity(settings)
    )
    if not collection_ids:
        stages.store_transcript(ctx, video_id, prepared)
        return []
    # the first collection through the ingest's commit (catalog rows, index, ready);
    # a video in several collections has its vectors replaced in each of the others too
    stages.commit(ctx, collection_ids[0], video_id, prepared)
    from .catalog import chunk_uuid, vector_id

    ids = [vector_id(chunk_uuid(video_id, c.index)) for c in chunks]
    for collection_id in collection_ids[1:]:
        write_chunks(
            ctx,
            collection_id,
            add_ids=ids,
            vectors=vectors,
            texts=[c.text for c in chunks],
            remove_ids=sorted(set(old_ids) - set(ids)),
            embedder=prepared.embedder,
        )
    return collection_ids


def over_new_transcript(ctx: Context, video_id: str, prepared):
    """``prepared`` (a new transcript of the video, chunked and embedded elsewhere) with
    the video's stored corrections applied; chunked and embedded again here only when a
    correction changed a line. Called by ``stages.commit``."""
    from . import stages

    stored = corrections_of(ctx, video_id)
    if not stored:
        return prepared
    segments, changed = apply(prepared.transcript.segments, stored)
    if not changed:
        return prepared
    settings = ctx.settings
    transcript = replace(prepared.transcript, segments=segments)
    chunks = stages.chunk(transcript, prepared.info.chapters, settings, prepared.info.title)
    vectors = stages.embed(chunks, settings)
    return replace(
        prepared,
        transcript=transcript,
        chunks=chunks,
        vectors=vectors,
        embedder=stages.embedder_identity(settings),
    )
