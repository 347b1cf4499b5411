"""Faults of shared ingest, on SQLite and on PostgreSQL: a worker killed mid-ingest while
two editors ingest into one collection at once, and the service (its ``IngestWorkers``)
restarted mid-job. Afterwards nothing is lost (every job done, every video in the
collection), the index is consistent (one generation per commit) and the catalog matches
the index (``assert_consistent``: the index holds exactly the chunks of the ready videos).

Real parts throughout: a Dask LocalCluster of two worker processes, yt-dlp against pages
served slowly on 127.0.0.1, MiniLM, FAISS, the service's own database (``open_database``:
kernel catalog and service tables) and its role policy (``RoleAccess`` with grants), so
the two editors are editors, not owners. Setup as in ``tests/test_service_work.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading

import pytest
from sqlalchemy import select
from vidrag_hub import sharing
from vidrag_hub.access import RoleAccess
from vidrag_hub.auth import HubUser
from vidrag_hub.db import open_database
from vidrag_hub.work import TOPIC, IngestWorkers

from tests.support.media_server import MediaServer
from tests.support.settings import make_settings
from tests.test_service_work import assert_consistent, wait
from vidrag_kernel.catalog import Chunk, Collection, CollectionVideo, IngestJob, Video
from vidrag_kernel.indexing import open_index
from vidrag_kernel.library import LocalLibrary

pytestmark = pytest.mark.slow
OWNER, EDITORS = "ada", ("bob", "cam")
PAGES = ("one", "two", "three", "four")


class Service:
    """The service's side without its web layer: its database, a library per user acting
    with that user's role (as ``vidrag_hub.app.Service`` builds them)."""

    def __init__(self, home, database_url: str | None = None) -> None:
        self.settings = make_settings(home, database_url=database_url)
        self.catalog = open_database(self.settings.resolved_database_url)

    def library(self, user: str) -> LocalLibrary:
        return LocalLibrary(
            self.settings, access=RoleAccess(HubUser(user)), catalog=self.catalog, name="shared"
        )

    def course(self, name: str) -> str:
        """A collection of the owner's with both editors granted the editor role."""
        info = self.library(OWNER).collections.create(name)
        with self.catalog.session() as s:
            row = s.get(Collection, info.id)
            for editor in EDITORS:
                sharing.grant(s, row, "user", editor, "editor", OWNER)
        return info.id

    def close(self) -> None:
        self.catalog.close()


@pytest.fixture(scope="module")
def slow_pages(tmp_path_factory, media_root):
    """Four captioned lecture pages (four videos), served with a 0.5 s delay per request."""
    root = tmp_path_factory.mktemp("fault-pages")
    html = (media_root / "lecture.html").read_text()
    for name in PAGES:
        shutil.copy(media_root / "lecture.mp4", root / f"{name}.mp4")
        shutil.copy(media_root / "lecture.vtt", root / f"{name}.vtt")
        (root / f"{name}.html").write_text(html.replace("lecture.", f"{name}.").replace("Three topics", name))
    server = MediaServer(root, delay=0.5)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two worker processes (one thread each) for the module; each
    test's runner connects to it by address, as a service does to a scheduler."""
    import dask
    from distributed import Client, LocalCluster
    from vidrag_hub.work import ALLOWED_FAILURES

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        local = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        )
    client = Client(local)
    yield client
    client.close()
    local.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request, tmp_path):
    url = None
    if request.param == "postgres":
        name = f"faults{abs(hash(request.node.nodeid)) % 10**9}"
        url = request.getfixturevalue("postgres").create_database(name)
    s = Service(tmp_path / "home", database_url=url)
    yield s
    s.close()


def runner(service: Service, cluster) -> IngestWorkers:
    workers = IngestWorkers(service.library, service.settings, address=cluster.scheduler.address)
    workers.start()
    return workers


def submit_together(workers: IngestWorkers, collection: str, pages: dict[str, str]) -> list[str]:
    """Each editor submits their page at the same moment, from their own thread."""
    ids: dict[str, list[str]] = {}
    start = threading.Barrier(len(pages))

    def submit(editor: str, url: str) -> None:
        start.wait()
        ids[editor] = workers.submit([url], collection, user=editor, captions="only")

    threads = [threading.Thread(target=submit, args=item) for item in pages.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [job for editor in pages for job in ids[editor]]


def assert_nothing_lost(service: Service, workers: IngestWorkers, collection: str, jobs: list[str]) -> None:
    """Every job done, its video ready in the collection with the chunks it reported,
    and the index holding exactly those chunks."""
    statuses = [workers.status(j) for j in jobs]
    assert [s["state"] for s in statuses] == ["done"] * len(jobs), statuses
    videos = assert_consistent(service, collection)
    assert videos == {s["video_id"] for s in statuses} and len(videos) == len(jobs)
    with service.catalog.session() as s:
        for status in statuses:
            assert s.get(CollectionVideo, (collection, status["video_id"])) is not None
            assert s.get(Video, status["video_id"]).status == "ready"
            chunks = s.scalars(select(Chunk.id).where(Chunk.video_id == status["video_id"])).all()
            assert len(chunks) == status["chunk_count"] > 0
        owners = {s.get(IngestJob, j).owner for j in jobs}
    assert owners == set(EDITORS)  # each job ran as the editor who queued it


def test_a_worker_killed_while_two_editors_ingest_into_one_collection(service, cluster, slow_pages):
    workers = runner(service, cluster)
    try:
        collection = service.course("Killed mid-ingest")
        generation = open_index(service.library(OWNER).ctx, collection).generation
        # the workers' pids before anything runs: asking for them between seeing the task
        # run and the kill gave a loaded CI machine time to finish it, and it never re-ran
        pids = cluster.run(os.getpid)
        jobs = submit_together(
            workers, collection, {"bob": slow_pages.url("one.html"), "cam": slow_pages.url("two.html")}
        )
        victim_job = jobs[0]
        wait(workers, victim_job, until=("fetching", "done", "failed"))
        [victim] = [a for a, keys in cluster.processing().items() if any(victim_job in k for k in keys)]
        pid = pids[victim] if victim in pids else cluster.run(os.getpid)[victim]  # a worker restarted since
        os.kill(pid, signal.SIGKILL)

        for job in jobs:
            wait(workers, job)
        assert_nothing_lost(service, workers, collection, jobs)
        # the killed task ran again, and the two commits were one after the other
        starts = [
            m for _t, m in cluster.get_events(TOPIC) if m["job"] == victim_job and m["state"] == "fetching"
        ]
        assert len(starts) >= 2, starts
        assert pid not in cluster.run(os.getpid).values()
        assert open_index(service.library(OWNER).ctx, collection).generation == generation + 2
    finally:
        workers.close()


def test_the_service_restarted_mid_job_loses_nothing(service, cluster, slow_pages, request):
    first = runner(service, cluster)
    collection = service.course("Restarted mid-job")
    generation = open_index(service.library(OWNER).ctx, collection).generation
    jobs = submit_together(
        first, collection, {"bob": slow_pages.url("three.html"), "cam": slow_pages.url("four.html")}
    )
    wait(first, jobs[0], until=("fetching", "done", "failed"))
    first.close()
    # the workers go down with the service (a LocalCluster's would); on a loaded machine a
    # nanny can take minutes to bring its worker back, and one worker is enough to go on
    cluster.restart(wait_for_workers=False)
    cluster.wait_for_workers(1, timeout=300)
    with service.catalog.session() as s:
        states = [s.get(IngestJob, j).state for j in jobs]
    # the restart interrupted work in flight (the second job may already have finished)
    assert any(state not in ("done", "failed") for state in states), states

    second = runner(service, cluster)  # a new service process on the same database
    try:
        for job in jobs:
            wait(second, job)
        assert_nothing_lost(service, second, collection, jobs)
        assert open_index(service.library(OWNER).ctx, collection).generation == generation + 2
    finally:
        second.close()
