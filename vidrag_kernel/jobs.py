"""Ingest jobs: what is running, what failed and why, and retrying."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from .catalog import IngestJob
from .context import Context
from .errors import InvalidInput, NotFound, VidragError

ACTIVE = ("queued", "fetching", "transcribing", "chunking", "embedding", "indexing")


@dataclass
class JobInfo:
    id: str
    source: str
    title: str | None
    state: str
    progress: float
    collection_id: str | None
    video_id: str | None
    transcript_source: str | None
    chunk_count: int
    timings: dict = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        for key in ("created_at", "updated_at"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


def _info(row: IngestJob) -> JobInfo:
    return JobInfo(
        id=row.id,
        source=row.source,
        title=row.title,
        state=row.state,
        progress=row.progress or 0.0,
        collection_id=row.collection_id,
        video_id=row.video_id,
        transcript_source=row.transcript_source,
        chunk_count=row.chunk_count or 0,
        timings=dict(row.timings or {}),
        error=row.error,
        error_kind=row.error_kind,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _alive(worker: str | None) -> bool:
    """Whether the process that claimed a job still runs (unknown hosts count as alive)."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class Jobs:
    """The current user's ingest jobs."""

    def __init__(self, ctx: Context, ingestor, collections) -> None:
        self._ctx = ctx
        self._ingestor = ingestor
        self._collections = collections

    def recover(self) -> int:
        """Mark jobs whose process died mid-way as failed, so they can be retried."""
        n = 0
        with self._ctx.catalog.session() as s:
            for job in s.scalars(select(IngestJob).where(IngestJob.state.in_(ACTIVE))):
                if job.worker != f"{socket.gethostname()}:{os.getpid()}" and not _alive(job.worker):
                    job.state = "failed"
                    job.error = "The ingest was interrupted before it finished; retry it."
                    job.error_kind = "interrupted"
                    n += 1
        return n

    def list(
        self, collection: str | None = None, *, state: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        self.recover()
        with self._ctx.catalog.session() as s:
            q = select(IngestJob).where(self._ctx.access.own_jobs())
            if collection is not None:
                q = q.where(IngestJob.collection_id == self._collections.resolve(s, collection).id)
            if state is not None:
                q = q.where(IngestJob.state == state)
            rows = s.scalars(q.order_by(IngestJob.created_at.desc()).limit(limit))
            return [_info(r) for r in rows]

    def get(self, job_id: str) -> JobInfo:
        with self._ctx.catalog.session() as s:
            row = s.scalar(select(IngestJob).where(IngestJob.id == job_id, self._ctx.access.own_jobs()))
            if row is None:
                raise NotFound(f"No ingest job {job_id!r}")
            return _info(row)

    def retry(self, job_id: str, progress=None):
        """Run a failed job again from the start (its source is planned afresh)."""
        from .ingest import IngestResult  # noqa: F401 - the return type

        self.recover()
        job = self.get(job_id)
        if job.state != "failed":
            raise InvalidInput(f"Only failed jobs can be retried; this one is {job.state}")
        with self._ctx.catalog.session() as s:
            row = s.get(IngestJob, job_id)
            row.state = "queued"
            row.error = None
            row.error_kind = None
            from .ingest import worker_id

            row.worker = worker_id()
            mode = row.captions_mode
            collection_id = row.collection_id or self._collections.resolve(s, None).id
        from .progress import silent

        try:
            infos = self._ingestor.expand([job.source])
        except VidragError as exc:
            # the source itself is now unusable (gone, refused): the job fails again, clearly
            with self._ctx.catalog.session() as s:
                row = s.get(IngestJob, job_id)
                row.state, row.error, row.error_kind = "failed", str(exc), exc.kind
            raise
        results = [
            self._ingestor.run_one(info, collection_id, mode, progress or silent, job_id if i == 0 else None)
            for i, info in enumerate(infos)
        ]
        return results
