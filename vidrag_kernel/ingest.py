"""The ingest pipeline: fetch → transcribe (or captions) → chunk → embed → index.

Each video gets an ``IngestJob`` row that records its state and per-stage timings, so a
failure is visible and retryable. The order of writes keeps a collection consistent if a
run dies at any point: segments and chunks are stored while the video is still
``pending``, the index gets a new generation atomically, and only then is the video
marked ``ready``; retrieval ignores videos that are not ready. Re-running the same
source is idempotent because chunk ids are derived from (video, chunk index).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from .catalog import Chunk, CollectionVideo, IngestJob, Video, chunk_uuid, vector_id
from .catalog import Segment as SegmentRow
from .context import Context
from .errors import InvalidInput, VidragError
from .progress import ProgressCallback, ProgressEvent, silent
from .records import MediaInfo, Transcript

CAPTION_MODES = ("auto", "prefer", "only", "never")
# Rough cost model for plans, measured on a 2-core machine with tiny.en (see benchmarks/).
ASR_SPEED = 25.0  # audio seconds per wall second
CAPTIONS_SECONDS = 3.0


@dataclass
class PlanItem:
    """What ingesting one video would do, decided before any media is downloaded."""

    title: str
    url: str
    source_key: str
    duration: float | None
    uploader: str | None
    captions: bool  # manual captions published
    auto_captions: bool  # automatic captions published
    transcript_source: str  # "captions" or "asr"
    already_ingested: bool
    estimated_seconds: float | None
    minutes: float | None  # what a quota would count
    error: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class IngestResult:
    """The outcome for one video."""

    job_id: str
    video_id: str | None
    title: str
    url: str
    duration: float | None
    status: str  # "done", "exists" or "failed"
    source: str | None  # "captions" or "asr"
    chunk_count: int = 0
    timings: dict = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.video_id,
            "job_id": self.job_id,
            "title": self.title,
            "url": self.url,
            "duration": self.duration,
            "status": self.status,
            "source": self.source,
            "chunks": self.chunk_count,
            "timings": self.timings,
            "error": self.error,
        }


def _check_mode(captions: str) -> str:
    if captions not in CAPTION_MODES:
        raise InvalidInput(f"--captions must be one of {', '.join(CAPTION_MODES)}, not {captions!r}")
    return captions


def choose_source(info: MediaInfo, captions: str) -> str:
    """Whether captions or speech recognition will make the transcript."""
    if captions == "never":
        return "asr"
    if captions == "only":
        return "captions"
    if captions == "prefer":
        return "captions" if info.has_captions else "asr"
    return "captions" if info.has_manual_captions else "asr"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Ingestor:
    """Runs ingests for one Workbench."""

    def __init__(self, ctx: Context, collections) -> None:
        self._ctx = ctx
        self._collections = collections

    # -- planning ------------------------------------------------------------------------
    def expand(self, sources: Sequence[str]) -> list[MediaInfo]:
        from .fetch import plan_source

        infos: list[MediaInfo] = []
        for source in sources:
            infos.extend(plan_source(source, self._ctx.settings))
        return infos

    def plan(self, sources: str | Sequence[str], captions: str | None = None) -> list[PlanItem]:
        """List what ``sources`` would add, without downloading media."""
        mode = _check_mode(captions or self._ctx.settings.captions)
        sources = [sources] if isinstance(sources, str) else list(sources)
        items = []
        infos = self.expand(sources)
        keys = [i.source_key for i in infos]
        with self._ctx.catalog.session() as s:
            rows = s.execute(select(Video.source_key, Video.status).where(Video.source_key.in_(keys))).all()
        known = dict(rows)
        for info in infos:
            source = choose_source(info, mode)
            if source == "captions":
                estimate = CAPTIONS_SECONDS
            elif info.duration:
                estimate = info.duration / ASR_SPEED
            else:
                estimate = None
            error = None
            if mode == "only" and not info.has_captions:
                error = "no captions published"
            items.append(
                PlanItem(
                    title=info.title,
                    url=info.webpage_url or info.url,
                    source_key=info.source_key,
                    duration=info.duration,
                    uploader=info.uploader,
                    captions=info.has_manual_captions,
                    auto_captions=info.has_captions and not info.has_manual_captions,
                    transcript_source=source,
                    already_ingested=known.get(info.source_key) == "ready",
                    estimated_seconds=round(estimate, 1) if estimate is not None else None,
                    minutes=round(info.duration / 60, 2) if info.duration else None,
                    error=error,
                )
            )
        return items

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        sources: str | Sequence[str],
        collection: str | None = None,
        captions: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[IngestResult]:
        """Ingest every video of ``sources`` into ``collection`` (default: Uncategorized).

        Source-level problems (a refused URL, a 404, a page with no media, a video over the
        limits) raise a ``VidragError`` before anything is stored. Problems with one video
        of many are recorded on its job and returned as a ``failed`` result.
        """
        mode = _check_mode(captions or self._ctx.settings.captions)
        progress = progress or silent
        with self._ctx.catalog.session() as s:
            collection_id = self._collections.resolve(s, collection).id
        sources = [sources] if isinstance(sources, str) else list(sources)
        infos = self.expand(sources)
        return [self.run_one(info, collection_id, mode, progress) for info in infos]

    def _new_job(self, info: MediaInfo, collection_id: str, mode: str) -> str:
        with self._ctx.catalog.session() as s:
            job = IngestJob(
                owner=self._ctx.owner,
                collection_id=collection_id,
                source=info.webpage_url or info.url,
                title=info.title,
                captions_mode=mode,
                state="queued",
                worker=worker_id(),
                timings={},
            )
            s.add(job)
            s.flush()
            return job.id

    def _set_job(self, job_id: str, **fields) -> None:
        with self._ctx.catalog.session() as s:
            job = s.get(IngestJob, job_id)
            for key, value in fields.items():
                setattr(job, key, value)

    def run_one(
        self,
        info: MediaInfo,
        collection_id: str,
        mode: str,
        progress: ProgressCallback,
        job_id: str | None = None,
    ) -> IngestResult:
        """Ingest one planned video; never raises for a per-video failure."""
        job_id = job_id or self._new_job(info, collection_id, mode)
        timings: dict[str, float] = {}
        state = {"stage": "queued", "video_id": None, "source": None}

        def stage(name: str) -> None:
            state["stage"] = name
            self._set_job(job_id, state=name, progress=0.0, timings=dict(timings))
            progress(ProgressEvent(name, 0.0, "", state["video_id"], info.title))

        def reporter(name: str):
            def report(fraction: float, message: str = "") -> None:
                progress(
                    ProgressEvent(name, max(0.0, min(1.0, fraction)), message, state["video_id"], info.title)
                )

            return report

        try:
            video_id, existing = self._video_row(info)
            state["video_id"] = video_id
            self._set_job(job_id, video_id=video_id)
            if existing:
                return self._link_existing(job_id, info, video_id, collection_id, progress, timings)
            media = self._ctx.layout.media_dir(video_id)
            media.mkdir(parents=True, exist_ok=True)
            source = choose_source(info, mode)

            stage("fetching")
            t0 = time.perf_counter()
            transcript: Transcript | None = None
            if source == "captions":
                from .fetch import fetch_captions

                segments = fetch_captions(info, media, self._ctx.settings, include_auto=mode != "auto")
                if segments:
                    transcript = Transcript(
                        segments, self._ctx.settings.captions_language, info.duration, "captions"
                    )
                elif mode == "only":
                    raise InvalidInput(f"{info.title!r} has no published captions (captions mode 'only')")
            audio: Path | None = None
            if transcript is None:
                from .fetch import download_audio

                audio = download_audio(info, media, self._ctx.settings, reporter("fetching"))
            timings["fetch"] = round(time.perf_counter() - t0, 3)

            if transcript is None:
                stage("transcribing")
                t0 = time.perf_counter()
                from .transcribe import get_transcriber

                transcript = get_transcriber(self._ctx.settings).transcribe(audio, reporter("transcribing"))
                timings["transcribe"] = round(time.perf_counter() - t0, 3)
                if info.duration is None and transcript.duration:
                    info.duration = transcript.duration
            state["source"] = transcript.source

            stage("chunking")
            t0 = time.perf_counter()
            from .chunking import chunk_segments

            st = self._ctx.settings
            chunks = chunk_segments(
                transcript.segments,
                chapters=info.chapters,
                target_tokens=st.chunk_tokens,
                min_tokens=st.chunk_min_tokens,
                overlap_tokens=st.chunk_overlap_tokens,
            )
            if not chunks:
                where = "its captions" if transcript.source == "captions" else "its audio"
                raise InvalidInput(f"No speech was found in {where}: {info.title!r} has nothing to search")
            old_ids = self._store_transcript(video_id, info, transcript, chunks)
            timings["chunk"] = round(time.perf_counter() - t0, 3)

            stage("embedding")
            t0 = time.perf_counter()
            from .embed import get_embedder

            vectors = get_embedder(st).embed([c.text for c in chunks], reporter("embedding"))
            timings["embed"] = round(time.perf_counter() - t0, 3)

            stage("indexing")
            t0 = time.perf_counter()
            from .indexing import write_chunks

            ids = [vector_id(chunk_uuid(video_id, c.index)) for c in chunks]
            write_chunks(
                self._ctx,
                collection_id,
                add_ids=ids,
                vectors=vectors,
                texts=[c.text for c in chunks],
                remove_ids=sorted(set(old_ids) - set(ids)),
            )
            timings["index"] = round(time.perf_counter() - t0, 3)
            with self._ctx.catalog.session() as s:
                video = s.get(Video, video_id)
                video.status = "ready"
                if not s.get(CollectionVideo, (collection_id, video_id)):
                    s.add(CollectionVideo(collection_id=collection_id, video_id=video_id))
            timings["total"] = round(sum(timings.values()), 3)
            self._set_job(
                job_id,
                state="done",
                progress=1.0,
                timings=timings,
                transcript_source=transcript.source,
                chunk_count=len(chunks),
                error=None,
                error_kind=None,
            )
            progress(ProgressEvent("done", 1.0, f"{len(chunks)} chunks", video_id, info.title))
            return IngestResult(
                job_id, video_id, info.title, info.webpage_url or info.url, info.duration, "done",
                transcript.source, len(chunks), timings,
            )  # fmt: skip
        except Exception as exc:  # recorded on the job; VidragErrors carry a user message
            err = exc if isinstance(exc, VidragError) else VidragError(f"{type(exc).__name__}: {exc}")
            self._set_job(job_id, state="failed", error=err.message, error_kind=err.kind, timings=timings)
            if state["video_id"]:
                self._mark_failed(state["video_id"])
            progress(ProgressEvent("failed", 1.0, err.message, state["video_id"], info.title))
            return IngestResult(
                job_id, state["video_id"], info.title, info.webpage_url or info.url, info.duration, "failed",
                state["source"], 0, timings, err.message, err.kind,
            )  # fmt: skip

    def _video_row(self, info: MediaInfo) -> tuple[str, bool]:
        """The video's id, creating the row if new; True if it is already fully ingested."""
        with self._ctx.catalog.session() as s:
            row = s.scalar(select(Video).where(Video.source_key == info.source_key))
            if row is None:
                row = Video(source_key=info.source_key, url=info.url, status="pending")
                s.add(row)
            row.url = info.url
            row.webpage_url = info.webpage_url
            row.media_url = info.media_url
            row.title = info.title or row.title or "Untitled"
            row.uploader = info.uploader
            row.duration = info.duration if info.duration is not None else row.duration
            row.upload_date = info.upload_date
            row.thumbnail = info.thumbnail
            row.chapters = [{"title": c.title, "start": c.start, "end": c.end} for c in info.chapters]
            s.flush()
            return row.id, row.status == "ready"

    def _mark_failed(self, video_id: str) -> None:
        with self._ctx.catalog.session() as s:
            row = s.get(Video, video_id)
            if row is not None and row.status != "ready":
                row.status = "failed"

    def _store_transcript(self, video_id: str, info: MediaInfo, transcript: Transcript, chunks) -> list[int]:
        """Replace the video's segments and chunks; return the index ids it had before."""
        with self._ctx.catalog.session() as s:
            old_ids = list(s.scalars(select(Chunk.vector_id).where(Chunk.video_id == video_id)))
            s.execute(delete(SegmentRow).where(SegmentRow.video_id == video_id))
            s.execute(delete(Chunk).where(Chunk.video_id == video_id))
            for seg in transcript.segments:
                words = (
                    [{"text": w.text, "start": w.start, "end": w.end} for w in seg.words]
                    if seg.words
                    else None
                )
                s.add(
                    SegmentRow(
                        video_id=video_id, start=seg.start, end=seg.end, text=seg.text.strip(), words=words
                    )
                )
            for c in chunks:
                cid = chunk_uuid(video_id, c.index)
                s.add(
                    Chunk(
                        id=cid,
                        vector_id=vector_id(cid),
                        video_id=video_id,
                        index=c.index,
                        start=c.start,
                        end=c.end,
                        text=c.text,
                        chapter=c.chapter,
                        token_count=c.token_count,
                    )
                )
            video = s.get(Video, video_id)
            video.status = "pending"
            video.transcript_source = transcript.source
            video.language = transcript.language
            if video.duration is None:
                video.duration = transcript.duration or info.duration
        return old_ids

    def _link_existing(self, job_id, info, video_id, collection_id, progress, timings) -> IngestResult:
        """A video already ingested: add it to this collection (re-indexed there) and stop."""
        from .indexing import add_videos_to_index

        with self._ctx.catalog.session() as s:
            linked = s.get(CollectionVideo, (collection_id, video_id)) is not None
            video = s.get(Video, video_id)
            count = len(video.chunks)
            source = video.transcript_source
            duration = video.duration
            if not linked:
                s.add(CollectionVideo(collection_id=collection_id, video_id=video_id))
        if not linked:
            t0 = time.perf_counter()
            add_videos_to_index(self._ctx, collection_id, [video_id])
            timings["index"] = round(time.perf_counter() - t0, 3)
        self._set_job(
            job_id, state="done", progress=1.0, timings=timings, transcript_source=source, chunk_count=count
        )
        progress(ProgressEvent("done", 1.0, "already ingested", video_id, info.title))
        return IngestResult(
            job_id,
            video_id,
            info.title,
            info.webpage_url or info.url,
            duration,
            "exists",
            source,
            count,
            timings,
        )
