"""Batch ingest (``vidrag_kernel.batch``): serial against a LocalCluster, a killed worker,
reruns, and ``vidrag batch run``. Real espeak-ng lectures, whisper, MiniLM, FAISS, Dask."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from tests.support.cli import vidrag
from tests.support.lectures import contents, make_lectures, same
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def lectures(tmp_path_factory) -> Path:
    """A folder of three generated lectures (m4a), about 25 seconds each."""
    return make_lectures(tmp_path_factory.mktemp("lectures"), tmp_path_factory.mktemp("speech-work"))


def _settings(home: Path):
    # one whisper thread everywhere: the serial run and the workers decode alike
    return make_settings(home, whisper_threads=1)


def test_a_local_cluster_of_two_workers_gives_what_a_serial_run_gives(tmp_path, lectures):
    from vidrag_kernel import Workbench
    from vidrag_kernel.batch import run_batch

    events = []
    with Workbench(_settings(tmp_path / "serial"), libraries=()) as serial:
        s1 = run_batch(serial, "Batch", [str(lectures)], progress=events.append)
        serial_contents = contents(serial, "Batch")
    assert len(s1.added) == 3 and not s1.failed, s1.to_dict()
    assert {"transcribing", "embedding", "indexing", "done"} <= {e.stage for e in events}
    with Workbench(_settings(tmp_path / "dask"), libraries=()) as fanned:
        s2 = run_batch(fanned, "Batch", [str(lectures)], dask_address="local:2")
        assert s2.stats["mode"] == "local" and s2.stats["workers"] == 2
        assert sum(s2.stats["tasks_per_worker"].values()) == 3
        same(serial_contents, contents(fanned, "Batch"))
        # the summary says what each video took, stage by stage
        for added in s2.to_dict()["added"]:
            assert added["transcript_source"] == "asr" and added["chunks"] > 0
            assert {"fetch", "transcribe", "chunk", "embed", "index"} <= set(added["seconds"])
        # a rerun adds nothing: every video is already in the collection (and no cluster starts)
        again = run_batch(fanned, "Batch", [str(lectures)], dask_address="local:2")
        assert again.added == [] and again.failed == [] and again.stats["mode"] == "serial"
        assert [s["reason"] for s in again.skipped] == ["already in the collection"] * 3
        assert json.loads(json.dumps(again.to_dict()))["stopped"] is None


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path, lectures):
    import dask
    from distributed import Client, LocalCluster

    from vidrag_kernel import Workbench, fanout
    from vidrag_kernel.batch import run_batch

    with dask.config.set({"distributed.scheduler.allowed-failures": 2}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        )
    killer = Client(cluster)
    first_transcription = threading.Event()
    victim: dict = {}

    def watch(event) -> None:
        if event.stage == "transcribing" and not first_transcription.is_set():
            victim["worker"] = event.message  # the worker address the task reported
            first_transcription.set()

    pids = killer.run(os.getpid)  # worker address -> its process, known before the batch

    def kill() -> None:
        if first_transcription.wait(300):
            victim["pid"] = pids[victim["worker"]]
            os.kill(victim["pid"], signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        with Workbench(_settings(tmp_path / "home"), libraries=()) as wb:
            summary = run_batch(
                wb, "Killed", [str(lectures)], dask_address=cluster.scheduler_address, progress=watch
            )
            thread.join(10)
            assert "pid" in victim, "no worker was killed"
            assert len(summary.added) == 3 and not summary.failed, summary.to_dict()
            # the killed worker's video was prepared again, by a process that lived
            events = [msg for _t, msg in killer.get_events(fanout.TOPIC)]
            by_key: dict = {}
            for msg in events:
                by_key.setdefault(msg["key"], set()).add(msg["pid"])
            assert any(victim["pid"] in pids and len(pids) > 1 for pids in by_key.values()), by_key
            # and the collection is whole: every video ready, every chunk in the index
            held = contents(wb, "Killed")
            assert held.pop("_index_size") == sum(len(v["chunks"]) for v in held.values())
            assert {v["status"] for v in held.values()} == {"ready"}
    finally:
        killer.close()
        cluster.close()


def test_bad_sources_fail_alone_and_the_rest_is_ingested(tmp_path, lectures, media_server):
    from vidrag_kernel import Workbench
    from vidrag_kernel.batch import run_batch

    with Workbench(_settings(tmp_path / "home"), libraries=()) as wb:
        one = str(lectures / "lecture0.m4a")
        summary = run_batch(
            wb,
            "Mixed",
            [
                one,
                one,
                str(tmp_path / "missing.mp4"),
                media_server.url("corrupt.m4a"),
                media_server.url("lecture.html"),
            ],
            captions="only",
        )
        d = summary.to_dict()
    # captions mode "only": the lecture file has no captions, the page has them
    assert [a["transcript_source"] for a in d["added"]] == ["captions"]
    assert {s["reason"] for s in d["skipped"]} == {"listed more than once in this batch"}
    stages = {f["source"].rsplit("/", 1)[-1]: f["stage"] for f in d["failed"]}
    assert stages["missing.mp4"] == "plan"
    assert stages["lecture0.m4a"] == "fetch"  # no captions published for a local file
    assert all(f["reason"] for f in d["failed"])


def test_vidrag_batch_run_executes_a_notebook_with_json_parameters(tmp_path, lectures):
    home = tmp_path / "home"
    summary = tmp_path / "summary.json"
    out = tmp_path / "out.ipynb"
    r = vidrag(
        home,
        "batch", "run", str(NOTEBOOKS / "01_batch_ingest.ipynb"),
        "-p", "collection", "From the terminal",
        "-p", "sources", json.dumps([str(lectures / "lecture1.m4a")]),
        "-p", "summary_path", str(summary),
        "--output", str(out),
        env={"VIDRAG_FETCH_ALLOW_HOSTS": "127.0.0.1", "VIDRAG_WHISPER_THREADS": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(summary.read_text())
    assert data["collection"] == "From the terminal"
    assert [a["title"] for a in data["added"]] == ["lecture1"]
    assert out.is_file() and "added" in r.stdout
    # a notebook that is not there: one clear line, no traceback
    r = vidrag(home, "batch", "run", str(tmp_path / "nope.ipynb"))
    assert r.returncode == 4 and "Traceback" not in r.stderr and "nope.ipynb" in r.stderr


@pytest.mark.hub
def test_a_shared_batch_goes_through_the_service_and_stops_at_the_quota(
    tmp_path_factory, tmp_path, media_server
):
    """library="shared": the service's workers ingest, the Free plan's two videos fit, the
    third stops the run with the quota's message; a rerun skips what the course has."""
    from fastapi.testclient import TestClient
    from vidrag_hub.app import make_app

    from tests.support.service import ServiceHub
    from vidrag_kernel import Workbench
    from vidrag_kernel.batch import run_batch
    from vidrag_kernel.shared import ServiceLibrary

    hub = ServiceHub(tmp_path_factory.mktemp("batch-hub")).start()
    try:
        hub.user("ada")
        hub.group("instructors", ["ada"])
        app = make_app(hub.settings(tmp_path_factory.mktemp("batch-shared")))
        with TestClient(app, raise_server_exceptions=False) as http:
            runner = app.state.service.ingest_workers()
            runner.start()
            app.state.runner = runner
            try:
                shared = ServiceLibrary("http://testserver/services/vidrag/api/", hub.token("ada"), http=http)
                with Workbench(_settings(tmp_path / "ada").with_(user="ada"), libraries=[shared]) as wb:
                    wb.collections.create("Physics", library="shared")
                    page, audio, video = (
                        media_server.url(n) for n in ("lecture.html", "lecture.m4a", "lecture.webm")
                    )
                    summary = run_batch(wb, "Physics", [page, page, audio, video], library="shared")
                    d = summary.to_dict()
                    assert sorted(a["transcript_source"] for a in d["added"]) == ["asr", "captions"], d
                    assert all(a["chunks"] > 0 and a["video_id"] for a in d["added"])
                    assert d["stopped"] and "Free plan" in d["stopped"], d
                    reasons = {s["source"].rsplit("/", 1)[-1]: s["reason"] for s in d["skipped"]}
                    assert reasons["lecture.html"] == "listed more than once in this batch"
                    assert "stopped early" in reasons["lecture.webm"] and d["failed"] == []
                    assert {v.title for v in wb.videos.list("Physics")} == {a["title"] for a in d["added"]}
                    again = run_batch(wb, "Physics", [page, audio], library="shared").to_dict()
                    assert again["added"] == [] and again["stopped"] is None
                    assert [s["reason"] for s in again["skipped"]] == ["already in the collection"] * 2
            finally:
                app.state.runner = None
                runner.close()
    finally:
        assert hub.stop() == []
