"""Ingest jobs of shared collections, run on a Dask cluster; this process commits.

    submit ──► IngestJob rows (queued) ──► Dask task per job:   stages.prepare on a worker
                                                                 (fetch, transcribe, chunk,
                                                                  embed; no catalog, no index)
    job rows ◄── progress events (Worker.log_event → Client.subscribe_topic) ◄──┘
    commit (library.commit_prepared, one lock per collection) ◄── the Prepared result

Workers never open the catalog: they get everything a task needs as arguments and send
their stage and progress back as Dask events, which this process writes on the job row.
The service process is the single writer of every shared collection: it commits each
``Prepared`` through the kernel library, one commit at a time per collection (different
collections commit concurrently).

Faults:
- a worker process dies mid-task: its nanny starts a new one and the scheduler runs the
  task again (up to ``ALLOWED_FAILURES`` deaths, then the job fails with a clear error);
- the service stops: job rows stay in their running state, and the next ``start()``
  submits every job that was queued or running again;
- a failed stage or commit: the job is ``failed`` with the kernel's message, and the
  collection's index is untouched (the kernel commits a new generation only on success).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from vidrag_kernel.catalog import Catalog, Collection, IngestJob, Video
from vidrag_kernel.errors import InvalidInput, NotFound, VidragError
from vidrag_kernel.fanout import ALLOWED_FAILURES, Cluster, TaskOutcome, WarmModels, attempt
from vidrag_kernel.ingest import CAPTION_MODES, worker_id
from vidrag_kernel.jobs import ACTIVE
from vidrag_kernel.progress import silent
from vidrag_kernel.settings import Settings

if TYPE_CHECKING:
    from distributed import Client, Future

    from vidrag_kernel.library import LocalLibrary
    from vidrag_kernel.records import MediaInfo
    from vidrag_kernel.stages import Prepared

log = logging.getLogger("vidrag.hub.work")

#: the Dask event topic workers report stage progress on
TOPIC = "vidrag-ingest"
#: the name the service registers the kernel's models plugin (``fanout.WarmModels``) under:
#: not the batches' name, so a batch on the same scheduler with other settings (its
#: own whisper threads) does not replace the service's plugin on every worker
PLUGIN = "vidrag-warm-models"
#: the job states that mean "a worker is on it" (the ones a progress event may set)
WORKER_STATES = ("queued", "fetching", "transcribing", "chunking", "embedding")
#: the kernel's ``Jobs.recover`` fails active jobs whose "host:pid" process is gone; the
#: service's jobs carry this prefix, so their host part never matches and recovery
#: leaves them to ``IngestWorkers.start``, which runs them again instead.
WORKER_PREFIX = "dask:"


# -- on the workers ----------------------------------------------------------------------
def _pick(infos: list[MediaInfo], source: str, source_key: str | None) -> MediaInfo:
    for info in infos:
        if source_key and info.source_key == source_key:
            return info
        if not source_key and (info.webpage_url or info.url) == source:
            return info
    if len(infos) == 1:
        return infos[0]
    raise InvalidInput(f"{source} no longer holds the video this job was for")


def run_stages(
    job_id: str,
    key: str,
    source: str,
    info: MediaInfo | None,
    source_key: str | None,
    media_dir: str,
    settings: Settings,
    captions: str,
    glossary: list[str] | None = None,
) -> TaskOutcome:
    """On a Dask worker: fetch, transcribe, chunk and embed one video (``stages.prepare``).

    ``info`` is None for a job run again after a restart or a retry: the source is then
    planned here, on the worker, so the service's ``start()`` does no network work.
    Every failure comes back as a ``fanout.TaskOutcome`` with the kernel's user-facing
    message and error kind (not an exception), so Dask retries only what it should: a
    worker that died.
    """
    from distributed import get_worker

    from vidrag_kernel import stages

    worker = get_worker()
    current = {"state": "queued", "progress": 0.0}

    def send(state: str, fraction: float) -> None:
        # float(): engines report numpy floats, and events must be msgpack-serializable
        fraction = round(float(fraction), 3)
        current["state"], current["progress"] = state, fraction
        worker.log_event(TOPIC, {"job": job_id, "key": key, "state": state, "progress": fraction})

    def report(fraction: float, _message: str = "") -> None:
        # whisper reports per segment: a row update every 5 % is plenty for a progress bar
        if fraction >= 1.0 or fraction - current["progress"] >= 0.05:
            send(current["state"], fraction)

    def prepare() -> Prepared:
        planned = info
        if planned is None:
            from vidrag_kernel.fetch import plan_source

            send("fetching", 0.0)
            planned = _pick(plan_source(source, settings), source, source_key)
        return stages.prepare(
            planned, Path(media_dir), settings, captions, report, lambda state: send(state, 0.0), glossary
        )

    return attempt(prepare, lambda: current["state"])


# -- in the service ----------------------------------------------------------------------
class IngestWorkers:
    """Ingest jobs of shared collections, run on a Dask cluster; this process commits.

    ``library_factory(user)`` returns a ``LocalLibrary`` acting for that user (the
    service builds it with its role-aware access); jobs are planned and committed
    through it, so a user who may not edit a collection cannot ingest into it.
    ``committer(user)`` (default: ``library_factory``) is the library a result is
    committed through; the user's edit right is checked again through it at commit
    time, so a job queued by someone who lost the right meanwhile commits nothing.
    ``settings`` are the kernel settings the workers use (the shared data root as
    ``home``; ``settings.resolved_database_url`` must be the catalog the libraries use,
    since this object keeps the job rows there). ``address`` None starts a
    ``distributed.LocalCluster`` of ``n_workers`` processes with one thread each;
    "gateway" (or "gateway:N") a dask-gateway cluster of ``n_workers`` (or N) workers
    for as long as the runner runs, from the gateway Dask's config names
    (``vidrag_kernel.fanout.Cluster``); anything else is a scheduler address (a cluster
    elsewhere), whose scheduler should set ``distributed.scheduler.allowed-failures``.
    ``whisper_threads`` is faster-whisper's ``cpu_threads`` on each worker: set
    explicitly, because the nanny sets ``OMP_NUM_THREADS=1`` and the library's default
    differs by version.

    Use ``start()`` once, then ``submit``/``cancel``/``retry``/``status``; ``close()``
    at shutdown. Access checks beyond "may edit the collection" (who may see, cancel or
    retry a job) are the service's: these methods take job ids as given.
    """

    def __init__(
        self,
        library_factory: Callable[[str], LocalLibrary],
        settings: Settings,
        *,
        committer: Callable[[str], LocalLibrary] | None = None,
        address: str | None = None,
        n_workers: int = 1,
        whisper_threads: int = 1,
        quota: Any = None,
    ) -> None:
        if whisper_threads < 1:
            raise InvalidInput("whisper_threads must be at least 1 (0 would mean 'all cores' per worker)")
        self._factory = library_factory
        self._committer = committer or library_factory
        #: ``vidrag_hub.quotas.Quotas`` (None: nothing is counted): reserves as jobs are
        #: queued or retried, admits a result before its commit, settles at each job's end
        self.quota = quota
        self._settings = settings
        # the workers never open the catalog, and its URL may carry a password
        self.worker_settings = settings.with_(whisper_threads=whisper_threads, database_url=None)
        self.address = address
        self.n_workers = n_workers
        self._marker = WORKER_PREFIX + worker_id()
        self._catalog: Catalog | None = None
        self._cluster = None
        self._client: Client | None = None
        self._lock = threading.Lock()  # guards the two maps below and job-row state changes
        self._lifecycle = threading.Lock()  # start() against close() from another thread
        self._futures: dict[str, Future] = {}  # job id -> its task, while a worker has it
        self._committing: set[str] = set()  # job ids whose result is being committed
        self._collection_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._events: queue.Queue = queue.Queue()
        self._bookkeeper: threading.Thread | None = None
        self._commits: ThreadPoolExecutor | None = None
        self._closing = False

    def __enter__(self) -> IngestWorkers:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def client(self) -> Client:
        """The Dask client (for metrics: worker count, tasks in flight)."""
        if self._client is None:
            raise InvalidInput("IngestWorkers.start() has not been called")
        return self._client

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Connect to the cluster (or start the local one), load the models on every
        worker, and run again every job that was queued or running when the service
        last stopped.

        ``close()`` may be called from another thread while this runs (the service is
        stopped while its workers still load their models): start then returns at its
        next step without requeueing anything, and the cluster is closed."""
        with self._lifecycle:
            if self._client is not None or self._closing:
                return
            self._catalog = Catalog(self._settings.resolved_database_url)
            self._cluster = Cluster(cluster_address(self.address, self.n_workers))
            self._client = self._cluster.client
            self._commits = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vidrag-commit")
            self._bookkeeper = threading.Thread(
                target=self._record_progress, name="vidrag-progress", daemon=True
            )
            self._bookkeeper.start()
            self._client.subscribe_topic(TOPIC, self._events.put)
        try:
            # loads the models on every worker: the long step, ended early by close()
            self._client.register_plugin(WarmModels(self.worker_settings), name=PLUGIN)
        except Exception:
            if self._closing:
                return
            raise
        with self._lifecycle:
            if not self._closing:
                self._requeue()

    def close(self) -> None:
        """Stop: commits under way finish, tasks on the workers are dropped and their
        jobs stay as they are in the database, for the next ``start()`` to run again."""
        with self._lifecycle:
            self._closing = True
            if self._client is None:
                return
        with self._lock:
            self._futures.clear()
        self._commits.shutdown(wait=True)
        try:
            self._client.unsubscribe_topic(TOPIC)
        finally:
            self._cluster.close()  # the client, and the cluster if this runner started it
            self._events.put(None)
            self._bookkeeper.join(timeout=10)
            self._catalog.close()
            self._client = None

    def _requeue(self) -> None:
        with self._catalog.session() as s:
            rows = s.scalars(
                select(IngestJob).where(
                    IngestJob.state.in_(ACTIVE), IngestJob.worker.startswith(WORKER_PREFIX)
                )
            ).all()
            jobs = [(r.id, r.state) for r in rows]
        for job_id, state in jobs:
            log.info("running ingest job %s again (it was %s when the service stopped)", job_id, state)
            self._resubmit(job_id)

    # -- the API the service calls -------------------------------------------------------
    def submit(self, sources: Sequence[str], collection_id: str, *, user: str, captions: str) -> list[str]:
        """Plan ``sources`` now (a playlist expands) and queue one job per video for
        ``collection_id``, acting as ``user``; returns the job ids.

        A source that cannot be planned (refused, gone, no media) raises its
        ``VidragError`` and queues nothing; so does a collection the user may not edit.
        A video already ingested elsewhere is linked into the collection here, with no
        worker involved.
        """
        client = self.client
        if captions not in CAPTION_MODES:
            raise InvalidInput(f"captions must be one of {', '.join(CAPTION_MODES)}, not {captions!r}")
        library = self._factory(user)
        try:
            with library.ctx.catalog.session() as s:
                target = library.collections.resolve(s, collection_id, "edit").id
            infos = library.expand(list(sources))
            planned = []
            for info in infos:
                video_id, ready = library.ingestor.video_row(info)
                planned.append((info, video_id, ready, library.ctx.layout.media_dir(video_id)))
            job_ids = []
            with self._catalog.session() as s:
                for info, video_id, _ready, _media in planned:
                    row = IngestJob(
                        owner=library.ctx.owner,
                        collection_id=target,
                        video_id=video_id,
                        source=info.webpage_url or info.url,
                        title=info.title,
                        captions_mode=captions,
                        state="queued",
                        worker=self._marker,
                        timings={},
                    )
                    s.add(row)
                    s.flush()
                    job_ids.append(row.id)
                if self.quota is not None:  # same transaction: a refusal queues nothing
                    jobs = [(job_id, info) for job_id, (info, *_rest) in zip(job_ids, planned, strict=True)]
                    self.quota.reserve_jobs(s, target, user, jobs)
        finally:
            library.close()
        for job_id, (info, _video_id, ready, media) in zip(job_ids, planned, strict=True):
            if ready:
                self._commits.submit(self._link, job_id, info, user, target, captions)
            else:
                self._launch(client, job_id, row_source(info), info, info.source_key, media, captions)
        return job_ids

    def cancel(self, job_id: str) -> None:
        """Stop a queued or running job: it is marked failed ("cancelled") and nothing of
        it is committed. A worker already on it finishes and its result is dropped."""
        with self._lock:
            with self._catalog.session() as s:
                row = s.get(IngestJob, job_id)
                if row is None:
                    raise NotFound(f"No ingest job {job_id!r}")
                if job_id in self._committing or row.state == "indexing":
                    raise InvalidInput(
                        "This job is being committed to its collection; it can no longer be cancelled"
                    )
                if row.state not in ACTIVE:
                    raise InvalidInput(
                        f"Only queued or running jobs can be cancelled; this one is {row.state}"
                    )
                _mark_failed(s, row, "The ingest was cancelled before it finished.", "cancelled")
            future = self._futures.pop(job_id, None)
        if future is not None:
            future.cancel()
        if self.quota is not None:
            self.quota.settle(job_id)

    def retry(self, job_id: str) -> None:
        """Run a failed (or cancelled) job again from the start, on the workers."""
        self.client  # noqa: B018 - fails clearly when not started
        with self._lock, self._catalog.session() as s:
            row = s.get(IngestJob, job_id)
            if row is None:
                raise NotFound(f"No ingest job {job_id!r}")
            if row.state != "failed":
                raise InvalidInput(f"Only failed jobs can be retried; this one is {row.state}")
            row.state, row.progress, row.error, row.error_kind = "queued", 0.0, None, None
            row.worker, row.timings = self._marker, {}
            if self.quota is not None:
                self.quota.reserve_job(s, job_id)
        self._resubmit(job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's state, progress (0–1 within its stage), stage timings (seconds),
        error message and kind, and whether a worker has it now."""
        if self._catalog is None:
            raise InvalidInput("IngestWorkers.start() has not been called")
        with self._catalog.session() as s:
            row = s.get(IngestJob, job_id)
            if row is None:
                raise NotFound(f"No ingest job {job_id!r}")
            return {
                "id": row.id,
                "state": row.state,
                "progress": row.progress or 0.0,
                "timings": dict(row.timings or {}),
                "error": row.error,
                "error_kind": row.error_kind,
                "collection_id": row.collection_id,
                "video_id": row.video_id,
                "title": row.title,
                "source": row.source,
                "transcript_source": row.transcript_source,
                "chunk_count": row.chunk_count or 0,
                "on_worker": job_id in self._futures,
                "created_at": row.created_at.isoformat() if row.created_at else None,
                "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            }

    # -- running and finishing jobs ------------------------------------------------------
    def _resubmit(self, job_id: str) -> None:
        """Send a job whose row exists to the workers again (restart, retry)."""
        with self._catalog.session() as s:
            row = s.get(IngestJob, job_id)
            video = s.get(Video, row.video_id) if row.video_id else None
            source, captions, owner = row.source, row.captions_mode, row.owner
            source_key = video.source_key if video is not None else None
            if row.collection_id is None:
                _mark_failed(s, row, "Its collection was deleted.", "not_found")
                return
            row.state, row.progress = "queued", 0.0
        if source_key is None:
            # the video row is gone (deleted meanwhile): plan here to make it again
            library = self._factory(owner)
            try:
                info = _pick(library.expand([source]), source, None)
                video_id, _ready = library.ingestor.video_row(info)
                media = library.ctx.layout.media_dir(video_id)
            except VidragError as exc:
                with self._catalog.session() as s:
                    _mark_failed(s, s.get(IngestJob, job_id), exc.message, exc.kind)
                return
            finally:
                library.close()
            with self._catalog.session() as s:
                s.get(IngestJob, job_id).video_id = video_id
            self._launch(self.client, job_id, source, info, info.source_key, media, captions)
            return
        media = self._media_dir(owner, row.video_id)
        self._launch(self.client, job_id, source, None, source_key, media, captions)

    def _media_dir(self, owner: str, video_id: str) -> Path:
        library = self._factory(owner)
        try:
            return library.ctx.layout.media_dir(video_id)
        finally:
            library.close()

    def _launch(
        self,
        client: Client,
        job_id: str,
        source: str,
        info: MediaInfo | None,
        source_key: str | None,
        media: Path,
        captions: str,
    ) -> None:
        # a fresh key per attempt: a retried job must not get the old attempt's result,
        # and progress events of an attempt still running somewhere can be told apart
        key = f"vidrag-ingest-{job_id}-{uuid.uuid4().hex[:8]}"
        with self._catalog.session() as s:  # the collection's course terms, read at each attempt
            row = s.get(IngestJob, job_id)
            collection = s.get(Collection, row.collection_id) if row and row.collection_id else None
            glossary = list(collection.glossary or []) if collection is not None else []
        with self._lock:
            future = client.submit(
                run_stages, job_id, key, source, info, source_key, str(media), self.worker_settings, captions,
                glossary, key=key, pure=False,
            )  # fmt: skip
            self._futures[job_id] = future
        future.add_done_callback(lambda f: self._finished(job_id, f))

    def _finished(self, job_id: str, future: Future) -> None:
        """Dask says the task ended (it runs this in a thread of its own): hand it to
        the commit threads."""
        if self._closing:
            return
        try:
            self._commits.submit(self._commit, job_id, future)
        except RuntimeError:  # the pool shut down: the service is closing
            pass

    def _commit(self, job_id: str, future: Future) -> None:
        from distributed import KilledWorker

        with self._lock:
            if self._futures.get(job_id) is not future:
                return  # cancelled, or retried meanwhile
            del self._futures[job_id]
            if future.cancelled():
                return  # dropped by the scheduler, not by us: the next start() runs it again
            self._committing.add(job_id)
        try:
            try:
                outcome = future.result()
            except KilledWorker:
                outcome = TaskOutcome(
                    error=(
                        f"The worker running this ingest died {ALLOWED_FAILURES + 1} times "
                        "(out of memory?); retry it, or ingest a shorter video."
                    ),
                    error_kind="worker_died",
                )
            except Exception as exc:  # the cluster itself failed the task
                outcome = TaskOutcome(error=f"{type(exc).__name__}: {exc}", error_kind="error")
            finally:
                future.release()
            with self._catalog.session() as s:
                row = s.get(IngestJob, job_id)
                owner, collection_id = row.owner, row.collection_id
                if outcome.error is not None or collection_id is None:
                    _mark_failed(s, row, outcome.error or "Its collection was deleted.", outcome.error_kind)
                    return
            with self._collection_locks[collection_id]:
                library = self._committing_library(job_id, owner, collection_id)
                if library is None:
                    return
                try:
                    if self.quota is not None:  # longer than reserved: may stop at the limit
                        self.quota.admit(job_id, outcome.prepared)
                    library.commit_prepared(outcome.prepared, collection_id, job_id=job_id)
                except VidragError as exc:
                    with self._catalog.session() as s:
                        _mark_failed(s, s.get(IngestJob, job_id), exc.message, exc.kind)
                finally:
                    library.close()
        except Exception:
            log.exception("committing ingest job %s failed", job_id)
            with self._catalog.session() as s:
                _mark_failed(s, s.get(IngestJob, job_id), "The ingest could not be committed.", "error")
        finally:
            with self._lock:
                self._committing.discard(job_id)
            if self.quota is not None:
                self.quota.settle(job_id)

    def _link(self, job_id: str, info: MediaInfo, user: str, collection_id: str, captions: str) -> None:
        """A video already ingested (for another collection): link and index it here."""
        with self._lock:
            self._committing.add(job_id)
        try:
            with self._collection_locks[collection_id]:
                library = self._committing_library(job_id, user, collection_id)
                if library is None:
                    return
                try:
                    library.ingestor.run_one(info, collection_id, captions, silent, job_id)
                finally:
                    library.close()
        finally:
            with self._lock:
                self._committing.discard(job_id)
            if self.quota is not None:
                self.quota.settle(job_id)

    def _committing_library(self, job_id: str, user: str, collection_id: str) -> LocalLibrary | None:
        """The library to commit ``job_id`` through, once ``user`` is seen to still hold
        edit on the collection now; else the job fails saying why, and None."""
        try:
            library = self._committer(user)
        except VidragError as exc:  # the hub could not be asked: nothing is committed unchecked
            with self._catalog.session() as s:
                _mark_failed(
                    s, s.get(IngestJob, job_id), f"Not committed: {exc.message}. Retry the job.", exc.kind
                )
            return None
        refusal = edit_refusal(library, collection_id, user)
        if refusal is None:
            return library
        library.close()
        with self._catalog.session() as s:
            _mark_failed(s, s.get(IngestJob, job_id), refusal, "forbidden")
        return None

    def _record_progress(self) -> None:
        """Write the workers' progress events on the job rows, in one thread, so that
        Dask's event loop never waits for the database."""
        while True:
            event = self._events.get()
            if event is None:
                return
            _timestamp, msg = event
            try:
                job_id = msg["job"]
                with self._lock:
                    future = self._futures.get(job_id)
                    if future is None or future.key != msg["key"]:
                        continue  # finished, cancelled, or an older attempt still running
                    with self._catalog.session() as s:
                        row = s.get(IngestJob, job_id)
                        if row is not None and row.state in WORKER_STATES:
                            row.state, row.progress = msg["state"], float(msg["progress"])
            except Exception:  # a progress bar must never stop the jobs
                log.exception("could not record ingest progress %r", msg)


def cluster_address(address: str | None, n_workers: int) -> str:
    """The ``fanout.Cluster`` address for the runner's settings: no address is a local
    cluster of ``n_workers``, "gateway" a gateway cluster of as many, and a bare
    "host:port" a scheduler over TCP (as ``distributed.Client`` reads it)."""
    address = (address or "").strip()
    if not address:
        return f"local:{n_workers}"
    if address == "gateway":
        return f"gateway:{n_workers}"
    if "://" in address or address.startswith(("local:", "gateway:")):
        return address
    return "tcp://" + address


def row_source(info: MediaInfo) -> str:
    """What a job row records as its source: the page a person would open."""
    return info.webpage_url or info.url


def edit_refusal(library: LocalLibrary, collection_id: str, user: str) -> str | None:
    """Why ``user`` (the library's caller) may not add to the collection now, or None."""
    from vidrag_kernel.catalog import Collection

    with library.ctx.catalog.session() as s:
        row = s.get(Collection, collection_id)
        if row is None:
            return "Its collection was deleted."
        if library.ctx.access.allows(s, row, "edit"):
            return None
        role, name = library.ctx.access.role(s, row), row.name
    held = f"is now a {role} there" if role else "holds no role there any more"
    return (
        f"Not committed: {user} queued this ingest but may no longer edit {name!r} ({held}; "
        "adding videos needs the editor role). Nothing was added to the collection."
    )


def _mark_failed(session, row: IngestJob, message: str, kind: str | None) -> None:
    row.state, row.error, row.error_kind = "failed", message, kind or "error"
    if row.video_id:
        video = session.get(Video, row.video_id)
        if video is not None and video.status != "ready":
            video.status = "failed"
