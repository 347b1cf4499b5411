"""Batch ingest: many sources into one collection, fanned out per video over Dask.

    sources ──► expand (URLs, playlists, channels, feeds, files, folders)
            ──► skip what the collection already has
            ──► prepare per video (fetch, transcribe, chunk, embed):
                  ""          in this process, one after another
                  "local:N"   a LocalCluster of N processes, one thread each
                  "tcp://…"   an existing Dask scheduler ("gateway:N": dask-gateway)
            ──► commit each video as it arrives, here: this process is the collection's
                one writer, so no worker ever touches the catalog or the index
            ──► BatchSummary (added, skipped, failed with stage and reason, stopped)

A worker that dies mid-video loses nothing: its task runs again on another worker (up
to ``fanout.ALLOWED_FAILURES`` deaths, then the video is reported failed), and a
video is committed only from a whole ``Prepared`` result, so no half of one is stored.

``library="shared"`` sends the videos to the vidrag service instead (through the
Workbench's ``ServiceLibrary``), which fans out on its own cluster and commits as the
shared collection's writer; a quota refusal stops the run with what fitted ingested.

``01_batch_ingest.ipynb`` is a thin shell over ``run_batch`` (and the service's
scheduled runs execute that notebook), so the summary's shape is a contract: see
``BatchSummary.to_dict``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, QuotaExceeded, VidragError
from .ingest import CAPTION_MODES
from .progress import ProgressCallback, ProgressEvent, silent

if TYPE_CHECKING:
    from .library import LocalLibrary
    from .records import MediaInfo
    from .stages import Prepared
    from .workbench import Workbench

log = logging.getLogger("vidrag.batch")

LIBRARIES = ("personal", "shared")
ALREADY = "already in the collection"
TWICE = "listed more than once in this batch"
#: the stage names a summary's ``seconds`` use, in pipeline order (plots follow it)
STAGE_ORDER = ("fetch", "transcribe", "chunk", "embed", "index")


@dataclass
class BatchSummary:
    """What a batch did. ``to_dict()`` is the run summary JSON the notebook writes."""

    collection: str
    added: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    stopped: str | None = None
    #: how it ran: mode ("serial", "local", "scheduler", "gateway", "shared"), workers,
    #: wall seconds, seconds spent committing (the single writer), per-worker task counts
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The summary JSON: collection, added, skipped, failed, stopped."""
        return {
            "collection": self.collection,
            "added": list(self.added),
            "skipped": list(self.skipped),
            "failed": list(self.failed),
            "stopped": self.stopped,
        }

    def rows(self) -> list[dict]:
        """One row per video added or failed, for a summary table: title, duration,
        captions or ASR, chunks, seconds per stage, and the failure's stage and reason."""
        out = []
        for a in self.added:
            row = {
                "title": a["title"],
                "duration_s": a["duration_s"],
                "transcript": "captions" if a["transcript_source"] == "captions" else "ASR",
                "chunks": a["chunks"],
            }
            row.update({s: a["seconds"].get(s) for s in STAGE_ORDER})
            row["status"] = "added"
            out.append(row)
        for f in self.failed:
            out.append(
                {"title": f.get("title") or f["source"], "status": f"failed at {f['stage']}: {f['reason']}"}
            )
        return out

    def stage_totals(self) -> dict[str, float]:
        """Seconds per stage summed over the videos added."""
        totals = dict.fromkeys(STAGE_ORDER, 0.0)
        for a in self.added:
            for stage in STAGE_ORDER:
                totals[stage] += float(a["seconds"].get(stage) or 0.0)
        return {k: round(v, 3) for k, v in totals.items()}


@dataclass
class _Item:
    """One planned video of the batch."""

    source: str
    info: MediaInfo
    video_id: str = ""
    media_dir: Path | None = None


def run_batch(
    wb: Workbench,
    collection: str,
    sources: str | Sequence[str],
    *,
    library: str = "personal",
    captions: str = "auto",
    dask_address: str = "",
    progress: ProgressCallback | None = None,
) -> BatchSummary:
    """Ingest every video of ``sources`` that ``collection`` lacks; never raises for one
    video's failure (it is in ``summary.failed`` with its stage and reason).

    ``sources``: URLs (videos, playlists, channels, feeds), local files and folders of
    media files. ``library``: "personal" (this process writes the collection, created
    if new) or "shared" (the vidrag service ingests; the collection must exist there).
    ``dask_address``: "" prepares videos here one after another; "local:N" on a
    LocalCluster of N worker processes; "tcp://host:port" on an existing scheduler;
    "gateway:N" on a new dask-gateway cluster of N workers. ``progress`` gets the kernel's
    ``ProgressEvent`` per video and stage (``tqdm_progress()`` draws them).
    """
    if library not in LIBRARIES:
        raise InvalidInput(f"library must be 'personal' or 'shared', not {library!r}")
    if captions not in CAPTION_MODES:
        raise InvalidInput(f"captions must be one of {', '.join(CAPTION_MODES)}, not {captions!r}")
    if not collection or not str(collection).strip():
        raise InvalidInput("Name the collection to ingest into")
    sources = [sources] if isinstance(sources, str) else [str(s) for s in sources]
    progress = progress or silent
    started = time.perf_counter()
    if library == "shared":
        summary = _run_shared(wb, collection, sources, captions, progress)
    else:
        summary = _run_personal(wb, collection, sources, captions, dask_address, progress)
    summary.stats["wall_s"] = round(time.perf_counter() - started, 3)
    return summary


# -- planning --------------------------------------------------------------------------
def _expand_source(lib: LocalLibrary, source: str) -> list[MediaInfo]:
    """The videos one source holds; a folder holds its media files (not its subfolders)."""
    from .fetch import SUPPORTED_EXTENSIONS

    path = Path(source).expanduser()
    if "://" not in source and path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
        if not files:
            raise InvalidInput(
                f"The folder {source} holds no media files ({', '.join(e.lstrip('.') for e in SUPPORTED_EXTENSIONS)})"
            )
        return [info for f in files for info in lib.expand(str(f))]
    return lib.expand(source)


def _plan(
    lib: LocalLibrary, sources: Sequence[str], have: set[str], summary: BatchSummary
) -> list[tuple[str, MediaInfo]]:
    """Expand every source; a source that cannot be used fails alone (stage "plan")."""
    planned, seen = [], set()
    for source in sources:
        try:
            infos = _expand_source(lib, source)
        except VidragError as exc:
            summary.failed.append({"source": source, "stage": "plan", "reason": exc.message})
            continue
        for info in infos:
            where = info.webpage_url or info.url or source
            if info.source_key in have:
                summary.skipped.append({"source": where, "reason": ALREADY})
            elif info.source_key in seen:
                summary.skipped.append({"source": where, "reason": TWICE})
            else:
                seen.add(info.source_key)
                planned.append((source, info))
    return planned


def _source_of(info: MediaInfo, source: str) -> str:
    return info.webpage_url or info.url or source


def _added(source: str, result) -> dict:
    return {
        "source": source,
        "video_id": result.video_id,
        "title": result.title,
        "duration_s": result.duration,
        "transcript_source": result.source,
        "chunks": result.chunk_count,
        "seconds": {k: v for k, v in (result.timings or {}).items() if k != "total"},
    }


# -- personal: this process is the writer ------------------------------------------------
def _run_personal(
    wb: Workbench,
    collection: str,
    sources: Sequence[str],
    captions: str,
    dask_address: str,
    progress: ProgressCallback,
) -> BatchSummary:
    lib = wb.local
    target = lib.collections.get_or_create(collection)
    summary = BatchSummary(collection=target.name)
    have = {v.source_key for v in lib.videos.list(target.id) if v.status == "ready"}
    planned = _plan(lib, sources, have, summary)
    writer = _Writer(lib, target.id, summary, progress)
    # the course's glossary steers speech recognition towards its terms, as in an ingest
    glossary = list(getattr(target, "glossary", None) or []) or None
    fresh: list[_Item] = []
    for source, info in planned:
        video_id, ready = lib.ingestor.video_row(info)
        if ready:
            # transcribed for another collection already: linking it is the writer's job
            writer.link(source, info, captions)
        else:
            fresh.append(_Item(source, info, video_id, lib.ctx.layout.media_dir(video_id)))
    if not dask_address or not fresh:  # nothing to prepare: no cluster to start either
        summary.stats.update(mode="serial", workers=1)
        for item in fresh:
            writer.commit(item, _prepare_here(item, wb.settings, captions, progress, glossary))
    else:
        _fan_out(wb, fresh, captions, dask_address, writer, summary, progress, glossary)
    summary.stats["writer_s"] = round(writer.seconds, 3)
    return summary


class _Writer:
    """Commits prepared videos into the collection, one at a time, and tallies the time."""

    def __init__(self, lib: LocalLibrary, collection_id: str, summary: BatchSummary, progress) -> None:
        self.lib = lib
        self.collection_id = collection_id
        self.summary = summary
        self.progress = progress
        self.seconds = 0.0

    def link(self, source: str, info: MediaInfo, captions: str) -> None:
        t0 = time.perf_counter()
        result = self.lib.ingestor.run_one(info, self.collection_id, captions, self.progress)
        self.seconds += time.perf_counter() - t0
        self._record(source, info, result)

    def commit(self, item: _Item, outcome: tuple[Prepared | None, str | None, str | None]) -> None:
        prepared, stage, error = outcome
        if prepared is None:
            self.summary.failed.append(
                {
                    "source": _source_of(item.info, item.source),
                    "stage": stage,
                    "reason": error,
                    "title": item.info.title,
                }
            )
            self._mark_failed(item.video_id)
            self.progress(ProgressEvent("failed", 1.0, error or "", item.video_id, item.info.title))
            return
        t0 = time.perf_counter()
        result = self.lib.commit_prepared(prepared, self.collection_id, self.progress)
        self.seconds += time.perf_counter() - t0
        self._record(item.source, item.info, result)

    def _record(self, source: str, info: MediaInfo, result) -> None:
        where = _source_of(info, source)
        if result.status == "failed":
            self.summary.failed.append(
                {"source": where, "stage": "index", "reason": result.error, "title": info.title}
            )
        else:
            self.summary.added.append(_added(where, result))

    def _mark_failed(self, video_id: str) -> None:
        from .catalog import Video

        with self.lib.ctx.catalog.session() as s:
            row = s.get(Video, video_id)
            if row is not None and row.status != "ready":
                row.status = "failed"


def _prepare_here(item: _Item, settings, captions: str, progress: ProgressCallback, glossary=None):
    """``stages.prepare`` in this process: (prepared, None, None) or (None, stage, reason)."""
    from . import stages

    current = {"stage": "fetching"}

    def on_stage(state: str) -> None:
        current["stage"] = state
        progress(ProgressEvent(state, 0.0, "", item.video_id, item.info.title))

    def report(fraction: float, message: str = "") -> None:
        progress(
            ProgressEvent(
                current["stage"], max(0.0, min(1.0, float(fraction))), message, item.video_id, item.info.title
            )
        )

    try:
        return (
            stages.prepare(item.info, item.media_dir, settings, captions, report, on_stage, glossary),
            None,
            None,
        )
    except VidragError as exc:
        return None, _stage_name(current["stage"]), exc.message
    except Exception as exc:  # an engine's own error, with its type for whoever debugs it
        log.exception("preparing %r failed unexpectedly", item.info.title)
        return None, _stage_name(current["stage"]), f"{type(exc).__name__}: {exc}"


def _stage_name(state: str) -> str:
    """The summary's stage name for a job state ("transcribing" -> "transcribe")."""
    return {"fetching": "fetch", "transcribing": "transcribe", "chunking": "chunk", "embedding": "embed"}.get(
        state, state
    )


def _fan_out(
    wb: Workbench,
    items: Sequence[_Item],
    captions: str,
    dask_address: str,
    writer: _Writer,
    summary: BatchSummary,
    progress: ProgressCallback,
    glossary: list[str] | None = None,
) -> None:
    """Prepare ``items`` on a Dask cluster and commit each as it arrives."""
    try:
        from . import fanout
    except ImportError:
        from .errors import MissingDependency

        raise MissingDependency.for_extra("Fanning a batch out on Dask", "hub", "distributed") from None
    from distributed import KilledWorker, as_completed

    cluster = fanout.Cluster(dask_address)
    summary.stats.update(mode=cluster.kind, workers=cluster.n_workers)
    by_key: dict[str, _Item] = {}
    lock = threading.Lock()

    def on_event(event) -> None:
        # runs on the client's event loop: only forward, never block
        _timestamp, msg = event
        with lock:
            item = by_key.get(msg.get("key"))
        if item is not None:
            try:
                progress(
                    ProgressEvent(msg["stage"], 0.0, msg.get("worker", ""), item.video_id, item.info.title)
                )
            except Exception:  # a progress bar must never stop the batch
                log.exception("progress callback failed")

    try:
        client = cluster.client
        settings = fanout.worker_settings(wb.settings, cluster.n_workers)
        client.register_plugin(fanout.WarmModels(settings), name=fanout.WarmModels.name)
        client.subscribe_topic(fanout.TOPIC, on_event)
        futures = []
        for item in items:
            key = f"vidrag-batch-{item.video_id}-{time.monotonic_ns()}"
            with lock:
                by_key[key] = item
            futures.append(
                client.submit(
                    fanout.prepare_task,
                    key,
                    item.info,
                    str(item.media_dir),
                    settings,
                    captions,
                    glossary,
                    key=key,
                    pure=False,
                )  # fmt: skip
            )
            progress(ProgressEvent("queued", 0.0, "", item.video_id, item.info.title))
        per_worker: dict[str, int] = {}
        # this client's loop: a gateway's client is not the process's default client
        for future in as_completed(futures, loop=client.loop):
            item = by_key[future.key]
            try:
                outcome = future.result()
                if outcome.worker:
                    per_worker[outcome.worker] = per_worker.get(outcome.worker, 0) + 1
                result = (outcome.prepared, _stage_name(outcome.stage or ""), outcome.error)
            except KilledWorker:
                result = (
                    None,
                    "prepare",
                    "the worker preparing it died again and again (out of memory?); "
                    "run the batch again, or ingest this video alone",
                )
            except Exception as exc:  # the cluster itself failed the task
                result = (None, "prepare", f"{type(exc).__name__}: {exc}")
            finally:
                future.release()
            writer.commit(item, result)
        summary.stats["tasks_per_worker"] = per_worker
        try:
            client.unsubscribe_topic(fanout.TOPIC)
        except Exception:  # the scheduler may already be going away
            pass
    finally:
        cluster.close()


# -- shared: the service is the writer ----------------------------------------------------
def _run_shared(
    wb: Workbench, collection: str, sources: Sequence[str], captions: str, progress: ProgressCallback
) -> BatchSummary:
    service = wb.service
    if service is None:
        raise InvalidInput(
            "library 'shared' needs the vidrag service: run inside JupyterHub (JUPYTERHUB_API_TOKEN, "
            "VIDRAG_SERVICE_URL) or use library 'personal'"
        )
    info = service.collections.get(collection)
    summary = BatchSummary(collection=info.name, stats={"mode": "shared", "workers": None})
    known = service.videos.list(info.id)
    have = {v.source_key for v in known if v.status == "ready"}
    have_urls = {u for v in known if v.status == "ready" for u in (v.url, v.webpage_url) if u}
    # expanding here (no media downloaded) lets the run skip what the collection has
    # and send the service one video at a time when a quota stops the whole list
    urls: list[str] = []
    files: list[str] = []
    for source in sources:
        if source in have_urls:
            summary.skipped.append({"source": source, "reason": ALREADY})
            continue
        try:
            infos = _expand_source(wb.local, source)
        except VidragError as exc:
            if source.startswith(("http://", "https://")) and source not in urls:
                # this kernel may not reach what the service can (its fetch rules are
                # its own): let the service plan it, and say why if it cannot either
                urls.append(source)
            else:
                summary.failed.append({"source": source, "stage": "plan", "reason": exc.message})
            continue
        for item in infos:
            where = item.local_path or _source_of(item, source)
            if item.source_key in have or where in have_urls:
                summary.skipped.append({"source": where, "reason": ALREADY})
            elif where in urls or where in files:
                summary.skipped.append({"source": where, "reason": TWICE})
            elif item.local_path:
                files.append(where)  # the service never reads our disk: the file is uploaded
            else:
                urls.append(where)

    def one(kind: str, value: str) -> list:
        if kind == "file":
            return service.upload(value, info.id, progress=progress)
        return service.ingest(value, info.id, captions=captions, progress=progress)

    queue = [("url", u) for u in urls] + [("file", f) for f in files]
    results: list = []
    if urls:
        try:
            results = service.ingest(urls, info.id, captions=captions, progress=progress)
            queue = [("file", f) for f in files]
        except VidragError:
            # the whole list was refused (a quota it does not fit, one bad URL): one at a
            # time below, keeping what fits and failing only what is refused
            pass
    for n, (kind, value) in enumerate(queue):
        try:
            results.extend(one(kind, value))
        except QuotaExceeded as exc:
            summary.stopped = exc.message
            summary.skipped.extend(
                {"source": v, "reason": "not started: the run stopped early (quota)"} for _k, v in queue[n:]
            )
            break
        except VidragError as exc:
            summary.failed.append({"source": value, "stage": "ingest", "reason": exc.message})
    for result in results:
        where = result.url or ""
        if result.status in ("done", "exists"):
            summary.added.append(_added(where, result))
        elif result.status == "failed":
            summary.failed.append(
                {
                    "source": where,
                    "stage": _failed_stage(result),
                    "reason": result.error,
                    "title": result.title,
                }
            )
        else:  # the service took it but has not finished: say so rather than guess
            summary.failed.append(
                {
                    "source": where or result.job_id,
                    "stage": "ingest",
                    "reason": f"still {result.status} on the service (job {result.job_id})",
                }
            )
    return summary


def _failed_stage(result) -> str:
    """The stage a failed result stopped in."""
    # a stage's time is recorded even when it fails, so the last one timed is where it stopped
    timed = [s for s in STAGE_ORDER if s in (result.timings or {})]
    return timed[-1] if timed else "fetch"
