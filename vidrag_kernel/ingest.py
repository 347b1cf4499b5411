"""The ingest orchestrator: plans sources and runs the stages of ``vidrag_kernel.stages``
(fetch → transcribe or captions → chunk → embed → commit) for each video.

The stages are plain functions; this module adds the bookkeeping around them. Each video gets an ``IngestJob`` row that records its state and per-stage timings, so a
failure is visible and retryable. The order of writes keeps a collection consistent if a
run dies at any point: segments and chunks are stored while the video is still
``pending``, the index gets a new generation atomically, and only then is the video
marked ``ready``; retrieval ignores videos that are not ready. Re-running the same
source is idempotent because chunk ids are derived from (video, chunk index).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select

from . import stages
from .catalog import Collection, CollectionVideo, IngestJob, Video
from .context import Context
from .errors import InvalidInput, NotFound, VidragError
from .progress import ProgressCallback, Reporter, scaled, silent
from .records import MediaInfo

log = logging.getLogger("vidrag.ingest")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

CAPTION_MODES = ("auto", "prefer", "only", "never")
# Rough cost model for plans, measured on a 2-core machine (benchmarks/batch.py with tiny.en;
# base at beam 5 took about twice the CPU in benchmarks/transcribe.py): audio seconds per
# wall second, by speech model; another model (a name or a directory) counts as base.
ASR_SPEED = {"tiny.en": 25.0, "base": 12.0}
CAPTIONS_SECONDS = 3.0


def asr_speed(whisper_model: str | None) -> float:
    """Audio seconds transcribed per wall second with ``whisper_model`` (unset: the default)."""
    from .transcribe.models import default_model

    return ASR_SPEED.get(whisper_model or default_model(), ASR_SPEED["base"])


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
            source = stages.transcript_source(info, mode)
            if source == "captions":
                estimate = CAPTIONS_SECONDS
            elif info.duration:
                estimate = info.duration / asr_speed(self._ctx.settings.whisper_model)
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
        sources = [sources] if isinstance(sources, str) else list(sources)
        infos = self.expand(sources)  # a bad source fails here, before a collection is made
        collection_id = self._target(collection)
        from .indexing import open_index

        # an index built by another embedder fails now, not after every download
        open_index(self._ctx, collection_id)
        return [self.run_one(info, collection_id, mode, progress) for info in infos]

    def _target(self, collection: str | None) -> str:
        """The id of the collection to ingest into, created when a name is new.

        A new user's first command is often ``vidrag ingest URL --collection "CS 101"``;
        refusing it would only send them to type a second command, so the collection is
        created and the user told (a warning, which reaches stderr in the CLI and in
        notebooks). An id that matches nothing is still an error.
        """
        try:
            with self._ctx.catalog.session() as s:
                return self._collections.resolve(s, collection, "edit").id
        except NotFound:
            if collection is None or _UUID.match(collection.strip()):
                raise
        info = self._collections.create(collection)
        log.warning("Created collection %r (it did not exist yet)", info.name)
        return info.id

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

    def _glossary(self, collection_id: str) -> list[str]:
        """The course terms of the collection a video is transcribed for."""
        with self._ctx.catalog.session() as s:
            row = s.get(Collection, collection_id)
            return list(row.glossary or []) if row is not None else []

    def run_one(
        self,
        info: MediaInfo,
        collection_id: str,
        mode: str,
        progress: ProgressCallback,
        job_id: str | None = None,
    ) -> IngestResult:
        """Ingest one planned video; never raises for a per-video failure."""
        job = JobRun(self._ctx, job_id or self._new_job(info, collection_id, mode), info.title, progress)
        settings = self._ctx.settings
        try:
            video_id, existing = self.video_row(info)
            job.update(video_id=video_id)
            if existing:
                return self._link_existing(job, info, video_id, collection_id)
            media = self._ctx.layout.media_dir(video_id)
            glossary = self._glossary(collection_id)
            prepared = stages.prepare(info, media, settings, mode, glossary=glossary, stage=job.stage)
            job.source = prepared.transcript.source
            with job.stage("indexing", "index"):
                stages.commit(self._ctx, collection_id, video_id, prepared)
            return job.done(info, len(prepared.chunks), prepared.duration)
        except Exception as exc:  # recorded on the job; VidragErrors carry a user message
            return job.failed(info, exc)

    def commit_prepared(
        self,
        prepared: stages.Prepared,
        collection: str | None = None,
        progress: ProgressCallback | None = None,
        job_id: str | None = None,
    ) -> IngestResult:
        """Commit a video whose stages ran elsewhere (``stages.prepare`` in a Dask worker
        or a notebook) into ``collection``: this process is the collection's writer.

        ``job_id`` continues an existing job row (the one queued for that work); without
        it a job is recorded for the commit."""
        info = prepared.info
        with self._ctx.catalog.session() as s:
            collection_id = self._collections.resolve(s, collection, "edit").id
        job_id = job_id or self._new_job(info, collection_id, "prepared")
        job = JobRun(self._ctx, job_id, info.title, progress or silent)
        job.timings.update(prepared.timings)
        job.source = prepared.transcript.source
        try:
            video_id, _existing = self.video_row(info)
            job.update(video_id=video_id)
            with job.stage("indexing", "index"):
                stages.commit(self._ctx, collection_id, video_id, prepared)
            return job.done(info, len(prepared.chunks), prepared.duration)
        except Exception as exc:
            return job.failed(info, exc)

    def video_row(self, info: MediaInfo) -> tuple[str, bool]:
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

    def _link_existing(self, job: JobRun, info: MediaInfo, video_id: str, collection_id: str) -> IngestResult:
        """A video already ingested: add it to this collection (re-indexed there) and stop."""
        from .indexing import add_videos_to_index

        with self._ctx.catalog.session() as s:
            linked = s.get(CollectionVideo, (collection_id, video_id)) is not None
            video = s.get(Video, video_id)
            count = len(video.chunks)
            job.source = video.transcript_source
            duration = video.duration
            if not linked:
                s.add(CollectionVideo(collection_id=collection_id, video_id=video_id))
        if not linked:
            with job.stage("indexing", "index"):
                add_videos_to_index(self._ctx, collection_id, [video_id])
        return job.done(info, count, duration, status="exists", message="already ingested")


class JobRun:
    """One ingest job's bookkeeping: the stage context manager, the job row and progress.

    ``with job.stage("transcribing", "transcribe") as report:`` marks the job row as in
    that stage, reports progress through ``report(fraction, message)`` and records the
    stage's wall time under ``"transcribe"`` when the block ends.
    """

    def __init__(self, ctx: Context, job_id: str, title: str, progress: ProgressCallback) -> None:
        self._ctx = ctx
        self.job_id = job_id
        self.title = title
        self.progress = progress
        self.video_id: str | None = None
        self.source: str | None = None
        self.timings: dict[str, float] = {}

    def update(self, **fields) -> None:
        """Set columns of the job row."""
        if "video_id" in fields:
            self.video_id = fields["video_id"]
        with self._ctx.catalog.session() as s:
            job = s.get(IngestJob, self.job_id)
            for key, value in fields.items():
                setattr(job, key, value)

    def _reporter(self, stage: str) -> Reporter:
        return scaled(self.progress, stage, video_id=self.video_id, title=self.title)

    def _event(self, stage: str, fraction: float, message: str = "") -> None:
        self._reporter(stage)(fraction, message)

    @contextmanager
    def stage(self, state: str, timing: str) -> Iterator[Reporter]:
        """Run one stage: job row and progress say ``state``; its time goes in ``timing``."""
        self.update(state=state, progress=0.0, timings=dict(self.timings))
        report = self._reporter(state)
        report(0.0)
        t0 = time.perf_counter()
        try:
            yield report
        finally:
            self.timings[timing] = round(time.perf_counter() - t0, 3)

    def done(
        self,
        info: MediaInfo,
        chunk_count: int,
        duration: float | None,
        *,
        status: str = "done",
        message: str = "",
    ) -> IngestResult:
        """Record success and return the result."""
        self.timings["total"] = round(sum(v for k, v in self.timings.items() if k != "total"), 3)
        self.update(
            state="done",
            progress=1.0,
            timings=self.timings,
            transcript_source=self.source,
            chunk_count=chunk_count,
            error=None,
            error_kind=None,
        )
        self._event("done", 1.0, message or f"{chunk_count} chunks")
        return IngestResult(
            self.job_id, self.video_id, info.title, info.webpage_url or info.url, duration, status,
            self.source, chunk_count, self.timings,
        )  # fmt: skip

    def failed(self, info: MediaInfo, exc: BaseException) -> IngestResult:
        """Record a failure (a VidragError's message, else the exception's type and text)."""
        err = exc if isinstance(exc, VidragError) else VidragError(f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, VidragError):
            log.exception("ingest of %r failed unexpectedly", info.title)
        self.update(state="failed", error=err.message, error_kind=err.kind, timings=self.timings)
        if self.video_id:
            with self._ctx.catalog.session() as s:
                row = s.get(Video, self.video_id)
                if row is not None and row.status != "ready":
                    row.status = "failed"
        self._event("failed", 1.0, err.message)
        return IngestResult(
            self.job_id, self.video_id, info.title, info.webpage_url or info.url, info.duration, "failed",
            self.source, 0, self.timings, err.message, err.kind,
        )  # fmt: skip
