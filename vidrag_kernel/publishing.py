"""Publishing a personal collection to the vidrag service as a new shared collection.

An instructor builds a course privately, then ``wb.publish("CS101")`` (or ``vidrag
collections publish CS101``) makes it a shared collection they own on the service, with
the same name (or ``as_``), description and metadata. Each video is ingested again
there: by its source URL, or, for a local file, by uploading the file (the service
never reads paths of anyone's machine). The service's workers fetch and transcribe, the
service commits; this follows each job and reports its progress.

A video that cannot be published (its file is gone, the service refuses its URL, its job
fails) is listed with the reason and the others go on: the personal collection is never
changed. Only members of the service's creators group may publish (as for creating a
shared collection).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import Conflict, Forbidden, InvalidInput, VidragError
from .progress import ProgressCallback, ProgressEvent, silent

if TYPE_CHECKING:
    from .collections import CollectionInfo
    from .ingest import IngestResult
    from .workbench import Workbench

NO_SERVICE = (
    "Publishing needs the vidrag service: run this in a JupyterHub server whose hub runs the "
    "service (VIDRAG_SERVICE_URL and JUPYTERHUB_API_TOKEN set)"
)


@dataclasses.dataclass
class Unpublished:
    """A video of the personal collection that is not in the shared one, and why."""

    video_id: str
    title: str
    source: str
    reason: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PublishReport:
    """What ``publish`` made: the shared collection, the videos now in it, and the ones
    that could not be published (``failed``)."""

    collection: CollectionInfo
    published: list[IngestResult] = dataclasses.field(default_factory=list)
    failed: list[Unpublished] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "collection": self.collection.to_dict(),
            "published": [r.to_dict() for r in self.published],
            "failed": [f.to_dict() for f in self.failed],
        }


def publish(
    wb: Workbench, name: str, as_: str | None = None, *, progress: ProgressCallback | None = None
) -> PublishReport:
    """Publish the personal collection ``name`` as a new shared collection ``as_`` (default:
    the same name) owned by the caller; see the module docstring."""
    service = wb.service
    if service is None:
        raise InvalidInput(NO_SERVICE)
    report_progress = progress or silent
    source = wb.local.collections.get(name)
    videos = wb.local.videos.list(source.id)
    me = service.me()
    if not me.get("may_create_collections"):
        raise Forbidden(
            "Only the service's course creators (the instructors group) and hub admins may publish "
            "a collection; ask an administrator to add you"
        )
    target = (as_ or source.name).strip()
    if not target:
        raise InvalidInput("Give the shared collection a name (--as NAME)")
    taken = [c for c in service.collections.list() if c.name == target and c.owner == me.get("name")]
    if taken:
        raise Conflict(
            f"You already have a shared collection called {target!r}: publish under another name (--as NAME)"
        )
    meta = {k: getattr(source, k) for k in ("instructor", "subject", "semester") if getattr(source, k)}
    if source.tags:
        meta["tags"] = list(source.tags)
    shared = service.collections.create(target, source.description or "", **meta)

    report = PublishReport(collection=shared)
    queued: list[tuple[str, object]] = []  # (job id, the personal video) in the order sent
    for video in videos:
        where = video.page_url
        try:
            if video.source_key.startswith("file:"):
                file = Path(video.url)
                if not file.is_file():
                    raise InvalidInput(f"its file {video.url} is no longer there to upload")
                report_progress(ProgressEvent("queued", 0.0, "uploading", video.id, video.title))
                jobs = service.upload(file, shared.id, wait=False)
            else:
                # published captions were good enough here: take them again there
                captions = "prefer" if video.transcript_source == "captions" else None
                jobs = service.ingest(where, shared.id, captions=captions, wait=False)
        except VidragError as exc:
            report.failed.append(Unpublished(video.id, video.title, where, exc.message))
            continue
        queued.extend((job.job_id, video) for job in jobs)
    # the service works on them all at once; follow them one after the other
    for job_id, video in queued:
        try:
            result = service.follow(job_id, report_progress)
        except VidragError as exc:
            report.failed.append(Unpublished(video.id, video.title, video.page_url, exc.message))
            continue
        if result.status == "failed":
            report.failed.append(
                Unpublished(video.id, video.title, video.page_url, result.error or "the ingest failed")
            )
        else:
            report.published.append(result)
    report.collection = service.collections.get(shared.id)
    return report
