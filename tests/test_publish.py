"""Publishing a personal collection to the vidrag service: ``wb.publish`` and ``vidrag
collections publish NAME --as NEW``.

The real service app on uvicorn on 127.0.0.1 with its Dask ingest workers, checking
tokens with a real JupyterHub; the real ``vidrag`` command in a subprocess with a hub
server's environment. The instructor's personal collection holds a captioned lecture page
(published again by its URL) and a local audio file (uploaded, transcribed by whisper on
the service's worker)."""

from __future__ import annotations

import shutil

import pytest
from vidrag_hub.app import make_app

from tests.support.cli import vidrag
from tests.support.media_server import MediaServer
from tests.support.service import Served, ServiceHub
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.errors import Conflict, Forbidden, InvalidInput
from vidrag_kernel.shared import ServiceLibrary, api_base

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("publish-hub")).start()
    for name in ("ada", "sam"):
        hub.user(name)
    hub.group("instructors", ["ada"])
    # on the Pro plan: publishing twice sends more videos than the Free plan's two
    app = make_app(hub.settings(tmp_path_factory.mktemp("publish-root"), plans={"default_plan": "pro"}))
    runner = app.state.service.ingest_workers()
    runner.start()
    app.state.runner = runner
    try:
        with Served(app, hub.service_port) as served:
            hub.served = served
            yield hub
    finally:
        app.state.runner = None
        runner.close()
        assert hub.stop() == []


def hub_env(hub: ServiceHub, user: str) -> dict[str, str]:
    """What a user's server gives its processes (``hubenv.detect()`` reads it)."""
    return {
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": hub.token(user),
        "JUPYTERHUB_USER": user,
        "VIDRAG_SERVICE_URL": hub.served.url,
        "VIDRAG_SERVICE_NAME": "vidrag",
    }


def workbench(hub: ServiceHub, home, user: str) -> Workbench:
    shared = ServiceLibrary(api_base(hub.served.url), hub.token(user))
    return Workbench(make_settings(home, user=user), libraries=[shared])


@pytest.fixture(scope="module")
def course(hub, tmp_path_factory, media_root):
    """ada's personal "Biology notes": the captioned page, a local recording, and a page
    from a server that is gone by the time she publishes."""
    home = tmp_path_factory.mktemp("ada-home")
    files = tmp_path_factory.mktemp("ada-files")
    recording = files / "recording.m4a"
    shutil.copy(media_root / "lecture.m4a", recording)
    gone_root = tmp_path_factory.mktemp("gone")
    for name in ("lecture.html", "lecture.mp4", "lecture.vtt"):
        shutil.copy(media_root / name, gone_root / name)
    served, gone = MediaServer(media_root), MediaServer(gone_root)
    wb = Workbench(make_settings(home, user="ada"), libraries=())
    wb.collections.create("Biology notes", "My lectures", instructor="Ada", tags=["bio"])
    results = wb.ingest(
        [served.url("lecture.html"), gone.url("lecture.html")], "Biology notes", captions="only"
    )
    results += wb.ingest(str(recording), "Biology notes", captions="never")
    assert [r.status for r in results] == ["done", "done", "done"], [r.error for r in results]
    gone.stop()
    wb.close()
    yield home, served, gone
    served.stop()


def test_publish_from_the_workbench(hub, course, tmp_path):
    home, served, gone = course
    ada = workbench(hub, home, "ada")
    events: list = []
    report = ada.publish("Biology notes", "Biology 101", progress=events.append)

    shared = report.collection
    assert (shared.name, shared.library, shared.role, shared.owner) == (
        "Biology 101",
        "shared",
        "owner",
        "ada",
    )
    assert (shared.description, shared.instructor, shared.tags) == ("My lectures", "Ada", ["bio"])
    assert shared.video_count == 2
    sources = {r.source for r in report.published}
    assert sources == {"captions", "asr"}, report.published  # the page's captions; the file heard by whisper
    assert all(r.status == "done" and r.chunk_count > 0 for r in report.published)
    # the page from the server that is gone: one clear reason, the rest published
    [missing] = report.failed
    assert missing.source == gone.url("lecture.html") and missing.reason
    assert events[-1].stage == "done" and {e.video_id for e in events} >= {
        r.video_id for r in report.published
    }
    # a student given the course asks it; the personal collection is as it was
    ada.service.sharing.share("Biology 101", user="sam")
    sam = workbench(hub, tmp_path / "sam", "sam")
    hits = sam.search("what do plants capture sunlight with", "Biology 101", k=2)
    assert hits and "chlorophyll" in " ".join(h.text for h in hits).lower()
    personal = ada.local.collections.get("Biology notes")
    assert personal.video_count == 3 and personal.library == "local"

    # the same name again is refused before anything is sent
    with pytest.raises(Conflict, match="--as"):
        ada.publish("Biology notes", "Biology 101")
    # only course creators publish
    sam.collections.create("Sam's notes")
    with pytest.raises(Forbidden, match="instructors"):
        sam.publish("Sam's notes")
    assert "Sam's notes" not in {c.name for c in sam.collections.list() if c.library == "shared"}
    with pytest.raises(InvalidInput, match="vidrag service"):
        Workbench(make_settings(home, user="ada"), libraries=()).publish("Biology notes")


def test_vidrag_collections_publish_as_on_the_command_line(hub, course):
    home, _served, gone = course
    # the recording is moved away: that video cannot be uploaded, and says why
    recording = next(v for v in Workbench(make_settings(home, user="ada"), libraries=()).videos.list()
                     if v.source_key.startswith("file:"))  # fmt: skip
    moved = recording.url + ".moved"
    shutil.move(recording.url, moved)
    try:
        done = vidrag(home, "collections", "publish", "Biology notes", "--as", "Bio (shared)",
                      user="ada", env=hub_env(hub, "ada"))  # fmt: skip
    finally:
        shutil.move(moved, recording.url)
    assert done.returncode == 1, done.stderr  # some videos were not published
    assert "Traceback" not in done.stderr
    lines = done.stdout.strip().splitlines()
    assert sum(line.startswith("PUBLISHED ") for line in lines) == 1, done.stdout
    not_published = [line for line in lines if line.startswith("NOT PUBLISHED")]
    assert len(not_published) == 2 and any("no longer there to upload" in line for line in not_published)
    assert lines[-1].startswith("published Biology notes as the shared collection Bio (shared)")
    assert "1 of 3 video(s)" in lines[-1]

    shared = workbench(hub, home, "ada").collections.get("Bio (shared)")
    assert (shared.library, shared.owner, shared.video_count) == ("shared", "ada", 1)

    # a student's command is refused with one line, and exit code 3 (forbidden)
    sam_home = home.parent / "sam-cli-home"
    assert vidrag(sam_home, "collections", "create", "Sam notes", user="sam").returncode == 0
    refused = vidrag(sam_home, "collections", "publish", "Sam notes", user="sam", env=hub_env(hub, "sam"))
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.strip().startswith("vidrag: error: Only the service's course creators")
