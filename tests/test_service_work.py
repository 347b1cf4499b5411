"""The service's ingest runner on a real Dask LocalCluster of processes: workers run the
stages (real yt-dlp against 127.0.0.1, real whisper and MiniLM), this process commits.

One cluster (two worker processes) serves the whole module; the faults are real: a worker
process killed with SIGKILL mid-task, the service closed mid-job and a new one started on
the same database.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest
from sqlalchemy import select
from vidrag_hub.work import TOPIC, IngestWorkers

from tests.support.media_server import MediaServer
from tests.support.settings import make_settings
from vidrag_kernel.catalog import Catalog, Chunk, CollectionVideo, IngestJob, Video
from vidrag_kernel.errors import InvalidInput, VidragError
from vidrag_kernel.indexing import open_index
from vidrag_kernel.library import LocalLibrary

pytestmark = pytest.mark.slow
USER = "instructor"


class Service:
    """What the service gives the runner: one catalog, a library per user on it."""

    def __init__(self, home, database_url: str | None = None) -> None:
        self.settings = make_settings(home, database_url=database_url)
        self.catalog = Catalog(self.settings.resolved_database_url)

    def library(self, user: str) -> LocalLibrary:
        return LocalLibrary(self.settings.with_(user=user), catalog=self.catalog)

    def collection(self, name: str) -> str:
        return self.library(USER).collections.create(name).id

    def close(self) -> None:
        self.catalog.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory, media_root):
    """Two captioned lecture pages (distinct videos), fast and slow servers for them."""
    root = tmp_path_factory.mktemp("pages")
    for name in ("lecture.html", "lecture.mp4", "lecture.vtt", "lecture.m4a"):
        shutil.copy(media_root / name, root / name)
    shutil.copy(media_root / "lecture.m4a", root / "uncaptioned.m4a")
    html = (media_root / "lecture.html").read_text()
    for name in ("second", "third"):  # generic media are known by their URL: new names, new videos
        shutil.copy(media_root / "lecture.mp4", root / f"{name}.mp4")
        shutil.copy(media_root / "lecture.vtt", root / f"{name}.vtt")
        (root / f"{name}.html").write_text(html.replace("lecture.", f"{name}.").replace("Three topics", name))
    fast, slow = MediaServer(root), MediaServer(root, delay=1.0)
    yield fast, slow
    fast.stop()
    slow.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("service") / "home")
    yield s
    s.close()


@pytest.fixture(scope="module")
def workers(service):
    """The runner with its own LocalCluster of two worker processes (the default path)."""
    w = IngestWorkers(service.library, service.settings, n_workers=2, whisper_threads=1)
    w.start()
    yield w
    w.close()


def wait(workers: IngestWorkers, job_id: str, until=("done", "failed"), timeout: float = 180) -> list[str]:
    """Poll the job until its state is one of ``until``; return the states seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = workers.status(job_id)["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {seen[-1]} after {timeout} s (saw {seen})")


def assert_consistent(service: Service, collection_id: str) -> set[str]:
    """The collection's index holds exactly the chunks of its ready videos; returns them."""
    with service.catalog.session() as s:
        videos = set(
            s.scalars(
                select(Video.id)
                .join(CollectionVideo, CollectionVideo.video_id == Video.id)
                .where(CollectionVideo.collection_id == collection_id, Video.status == "ready")
            )
        )
        vector_ids = set(s.scalars(select(Chunk.vector_id).where(Chunk.video_id.in_(videos))))
    library = service.library(USER)
    assert set(open_index(library.ctx, collection_id).reader().ids().tolist()) == vector_ids
    return videos


ORDER = ["queued", "fetching", "transcribing", "chunking", "embedding", "indexing", "done"]


def test_a_job_runs_on_a_worker_and_this_process_commits(workers, service, pages):
    from distributed import get_task_stream

    fast, slow = pages
    collection = service.collection("Worked")
    with get_task_stream(client=workers.client) as stream:
        [job_id] = workers.submit([slow.url("lecture.html")], collection, user=USER, captions="only")
        seen = wait(workers, job_id)
    status = workers.status(job_id)
    assert status["state"] == "done", status
    # the row walked the states in order, and the slow fetch was visible on it
    assert seen == [s for s in ORDER if s in seen] and "fetching" in seen, seen
    assert status["transcript_source"] == "captions" and status["chunk_count"] > 0
    assert {"fetch", "chunk", "embed", "index"} <= set(status["timings"])
    ran = [t for t in stream.data if t["key"].startswith(f"vidrag-ingest-{job_id}")]
    assert ran and ran[0]["worker"] in workers.client.scheduler_info()["workers"]

    assert assert_consistent(service, collection) == {status["video_id"]}
    hit = service.library(USER).search("guillotine", collection, k=1)[0]
    assert hit.video_id == status["video_id"]


def test_asr_runs_on_the_workers_with_models_loaded_once(workers, service, pages):
    from vidrag_kernel.transcribe import faster

    fast, _slow = pages
    collection = service.collection("Spoken")
    [job_id] = workers.submit([fast.url("lecture.m4a")], collection, user=USER, captions="never")
    wait(workers, job_id)
    status = workers.status(job_id)
    assert status["state"] == "done" and status["transcript_source"] == "asr", status["error"]
    assert "transcribe" in status["timings"]
    assert service.library(USER).search("photosynthesis", collection, k=1)

    # each worker holds one speech model, loaded by the plugin with cpu_threads=1
    models = workers.client.run(lambda: [key[2] for key in faster._models])
    assert len(models) == 2 and all(threads == [1] for threads in models.values()), models
    assert set(workers.client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == {"1"}


def test_two_submissions_into_one_collection_at_once(workers, service, pages):
    fast, _slow = pages
    collection = service.collection("Together")
    generation = open_index(service.library(USER).ctx, collection).generation
    ids: dict[str, list[str]] = {}

    def submit(name: str) -> None:
        ids[name] = workers.submit([fast.url(name)], collection, user=USER, captions="only")

    threads = [threading.Thread(target=submit, args=(n,)) for n in ("lecture.html", "second.html")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = ids["lecture.html"] + ids["second.html"]
    for job_id in jobs:
        wait(workers, job_id)
    statuses = [workers.status(j) for j in jobs]
    assert [s["state"] for s in statuses] == ["done", "done"], statuses
    videos = assert_consistent(service, collection)
    assert videos == {s["video_id"] for s in statuses} and len(videos) == 2
    # one new generation per commit: the commits were serialised, none overwrote the other
    assert open_index(service.library(USER).ctx, collection).generation == generation + 2


def test_a_killed_worker_s_job_is_retried_and_done(workers, service, pages):
    _fast, slow = pages
    collection = service.collection("Killed")
    [job_id] = workers.submit([slow.url("second.html")], collection, user=USER, captions="only")
    wait(workers, job_id, until=("fetching", "done", "failed"))
    client = workers.client
    [victim] = [addr for addr, keys in client.processing().items() if any(job_id in k for k in keys)]
    pid = client.run(os.getpid)[victim]
    os.kill(pid, signal.SIGKILL)

    wait(workers, job_id)
    status = workers.status(job_id)
    assert status["state"] == "done", status
    assert pid not in client.run(os.getpid).values()  # the nanny started a new process
    # the task started twice: the killed attempt and the one Dask ran again
    starts = [m for _t, m in client.get_events(TOPIC) if m["job"] == job_id and m["state"] == "fetching"]
    assert len(starts) >= 2, starts
    assert assert_consistent(service, collection) == {status["video_id"]}


def test_a_service_restart_requeues_the_job(workers, service, pages, tmp_path):
    """The service stops mid-job; so do the workers of its cluster (as a LocalCluster's do
    with the service); a new service on the same database runs the job to the end."""
    _fast, slow = pages
    own = Service(tmp_path / "home")
    address = workers.client.scheduler.address
    first = IngestWorkers(own.library, own.settings, address=address)
    first.start()
    collection = own.collection("Restarted")
    [job_id] = first.submit([slow.url("lecture.html")], collection, user=USER, captions="only")
    wait(first, job_id, until=("fetching", "done", "failed"))
    first.close()
    # the workers went down with the service; one back is enough for the job (a nanny can
    # take minutes to bring a worker back on a loaded machine: a clean-clone CI run)
    workers.client.restart(wait_for_workers=False)
    workers.client.wait_for_workers(1, timeout=600)
    with own.catalog.session() as s:
        assert s.get(IngestJob, job_id).state == "fetching"

    second = IngestWorkers(own.library, own.settings, address=address)
    second.start()
    try:
        wait(second, job_id)
        status = second.status(job_id)
        assert status["state"] == "done", status
        assert assert_consistent(own, collection) == {status["video_id"]}
    finally:
        second.close()
        own.close()


def test_a_service_stopped_while_its_workers_load_models_stops_without_waiting(tmp_path):
    """``close()`` from the service's main thread while ``start()`` (in its own thread)
    still waits for the workers to load their models: start returns quietly, nothing is
    requeued, and the cluster is gone. (JupyterHub stopped the service this way in a
    clean-clone CI run, and the hub's own stop timed out waiting for the warm-up.)"""
    own = Service(tmp_path / "home")
    runner = IngestWorkers(own.library, own.settings, n_workers=1, whisper_threads=1)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            runner.start()
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        deadline = time.monotonic() + 300
        while runner._client is None and starting.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner._client is not None, "the cluster never came up"
        assert starting.is_alive(), "the models loaded before close() could be tried"
        runner.close()
        starting.join(timeout=120)
        assert not starting.is_alive()
        assert errors == []
        assert runner._client is None
        runner.start()  # a closed runner stays closed
        assert runner._client is None
    finally:
        runner.close()
        own.close()


def test_bad_sources_fail_clearly_and_leave_the_index_as_it_was(workers, service, pages):
    fast, _slow = pages
    collection = service.collection("Failing")
    [good] = workers.submit([fast.url("lecture.html")], collection, user=USER, captions="only")
    wait(workers, good)
    index = open_index(service.library(USER).ctx, collection)
    generation, before = index.generation, assert_consistent(service, collection)
    with service.catalog.session() as s:
        jobs_before = len(s.scalars(select(IngestJob.id)).all())
        videos_before = len(s.scalars(select(Video.id)).all())

    # a URL that is not there: refused while planning, nothing queued or stored
    with pytest.raises(VidragError) as err:
        workers.submit([fast.url("missing.m4a")], collection, user=USER, captions="only")
    assert err.value.status in (400, 404, 502) and "missing.m4a" in err.value.message
    with service.catalog.session() as s:
        assert len(s.scalars(select(IngestJob.id)).all()) == jobs_before
        assert len(s.scalars(select(Video.id)).all()) == videos_before

    # a video that fails on the worker (no captions in "only" mode): the job says why
    [bad] = workers.submit([fast.url("uncaptioned.m4a")], collection, user=USER, captions="only")
    wait(workers, bad)
    status = workers.status(bad)
    assert status["state"] == "failed" and "no published captions" in status["error"], status
    assert status["error_kind"] == "invalid_input"
    assert index.generation == generation and assert_consistent(service, collection) == before

    # someone who may not edit the collection queues nothing
    with pytest.raises(VidragError):
        workers.submit([fast.url("lecture.html")], collection, user="student", captions="only")
    with pytest.raises(InvalidInput):
        workers.submit([fast.url("lecture.html")], collection, user=USER, captions="sometimes")


def test_cancel_then_retry(workers, service, pages):
    _fast, slow = pages
    collection = service.collection("Cancelled")
    [job_id] = workers.submit([slow.url("third.html")], collection, user=USER, captions="only")
    workers.cancel(job_id)
    status = workers.status(job_id)
    assert status["state"] == "failed" and status["error_kind"] == "cancelled", status
    assert "cancelled" in status["error"]
    with pytest.raises(InvalidInput, match="Only queued or running"):
        workers.cancel(job_id)
    # the worker may have been on it already: its result is dropped, not committed
    deadline = time.monotonic() + 30
    while slow.httpd.in_flight and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    assert workers.status(job_id)["state"] == "failed"
    assert assert_consistent(service, collection) == set()

    workers.retry(job_id)
    wait(workers, job_id)
    status = workers.status(job_id)
    assert status["state"] == "done" and status["error"] is None, status
    assert assert_consistent(service, collection) == {status["video_id"]}
    with pytest.raises(InvalidInput, match="Only failed jobs"):
        workers.retry(job_id)


@pytest.mark.postgres
def test_on_postgresql(workers, pages, postgres, tmp_path):
    fast, _slow = pages
    own = Service(tmp_path / "home", database_url=postgres.create_database("service_work"))
    runner = IngestWorkers(own.library, own.settings, address=workers.client.scheduler.address)
    runner.start()
    try:
        collection = own.collection("On PostgreSQL")
        sources = [fast.url("lecture.html"), fast.url("second.html")]
        jobs = runner.submit(sources, collection, user=USER, captions="only")
        for job_id in jobs:
            wait(runner, job_id)
        assert [runner.status(j)["state"] for j in jobs] == ["done", "done"]
        assert len(assert_consistent(own, collection)) == 2
    finally:
        runner.close()
        own.close()
