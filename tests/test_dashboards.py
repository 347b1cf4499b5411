"""The Panel dashboards: built in-process, run as the Voila notebook, and driven in a real browser.

The browser tests serve ``dashboards/apps/*.py`` with ``panel serve`` (and the media route
plugin) on a free 127.0.0.1 port against a fresh VIDRAG_HOME, and drive headless Debian
chromium with Playwright through a whole session: create a collection, ingest the lecture
from the media server (watching progress), ask, play a citation, play a transcript line,
delete the video. Screenshots of every step go to ``test-artifacts/dashboards/``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hub_config.options import free_port  # one port picker: never the same port twice
from tests.support.browser import (
    SMALL_CHUNKS,
    Shots,
    check_accessibility,
    clock,
    describe_violations,
    keyboard_session,
    play_line,
    select_first_row,
    workbench_session,
)

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "dashboards"


# -- in-process: every app builds ------------------------------------------------------------
def test_each_app_builds_against_a_workbench(settings):
    import panel as pn
    import vidrag_dashboards
    from vidrag_dashboards.app import WorkbenchApp
    from vidrag_dashboards.layout import Region

    from vidrag_kernel import Workbench

    with Workbench(settings) as wb:
        wb.collections.create("Course", instructor="Ada", tags=["week1"])
        app = vidrag_dashboards.workbench(wb, links={"Open JupyterLab": "/user/x/lab"})
        assert isinstance(app, WorkbenchApp)
        assert app.tabs.names == ["Chat", "Collections"]
        [nav] = [r for r in app.__panel__().select(Region) if r.tag == "nav"]  # the links' landmark
        assert 'href="/user/x/lab"' in nav.objects[0].object
        app.add_tab("Sharing", pn.pane.Markdown("later"))
        assert len(app.tabs) == 3 and app.tabs.names[-1] == "Sharing"
        assert isinstance(app.template(), pn.template.BaseTemplate)
        # the manager lists the collection with its metadata; the chat offers it as a scope
        table = app.manager.collections.table.value
        assert set(table["name"]) == {"Course", "Uncategorized"}
        assert table.set_index("name").loc["Course", "instructor"] == "Ada"
        assert any("Course" in label for label in app.chat.scope.labels)
        assert "No videos yet" in app.chat.banner.object
        for component in (vidrag_dashboards.manager(wb), vidrag_dashboards.chat(wb)):
            component.__panel__().get_root()  # renders to a Bokeh model without a server


def test_servable_scripts_build(tmp_path, monkeypatch):
    import runpy

    from vidrag_dashboards import state

    monkeypatch.setenv("VIDRAG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(state, "_shared", {})
    for script in sorted((DASHBOARDS / "apps").glob("*.py")):
        runpy.run_path(str(script), run_name="__main__")
    assert state._shared["wb"].settings.home == tmp_path / "home"
    state._shared["wb"].close()


def test_an_upload_over_the_limit_is_refused_and_nothing_is_saved(settings, monkeypatch):
    from vidrag_dashboards import add_videos
    from vidrag_dashboards.collection_manager import CollectionManager
    from vidrag_dashboards.state import AppState

    from vidrag_kernel import Workbench

    monkeypatch.setattr(add_videos, "MAX_UPLOAD_MB", 0.001)  # 1 kB
    with Workbench(settings) as wb:
        manager = CollectionManager(AppState(wb))
        add, status = manager.add_videos, manager.notices.status
        add.upload.filename = "lecture.mp4"
        add.upload.value = b"\0" * 5000
        assert status.alert_type == "danger" and "limited to 0.001 MB" in status.object
        assert add._upload_path is None and not (settings.home / "uploads").exists()
        add.upload.value = b"\0" * 500  # a small one is taken
        assert add._upload_path is not None and add._upload_path.read_bytes() == b"\0" * 500


def test_an_upload_is_saved_under_its_name_whichever_comes_first(settings):
    """In Voila (jupyter_bokeh) a file's bytes arrive before its name, and the name only if
    it changed; ``panel serve`` sends both at once. Either way the file is saved under its
    own name (its extension decides how it is read) and no stray copy is left."""
    from vidrag_dashboards.add_videos import AddVideosCard
    from vidrag_dashboards.state import AppState

    from vidrag_kernel import Workbench

    def saved():
        return sorted(p.name for p in (settings.home / "uploads").rglob("*") if p.is_file())

    with Workbench(settings) as wb:
        manager = AddVideosCard(AppState(wb))  # the upload receiver, on its own
        manager.upload.value = b"first"  # Voila: the bytes...
        assert manager._upload_path is None and "Receiving" in manager.upload_note.object
        manager.upload.filename = "week1.m4a"  # ...then the name
        assert manager._upload_path.name == "week1.m4a" and manager._upload_path.read_bytes() == b"first"
        manager.upload.value = b"second"  # another file: saved under the last name for now...
        manager.upload.filename = "week2.mp4"  # ...then under its own; the first copy is removed
        assert manager._upload_path.name == "week2.mp4" and manager._upload_path.read_bytes() == b"second"
        assert saved() == ["week1.m4a", "week2.mp4"]
        manager.upload.param.update(value=b"third", filename="week3.webm")  # panel serve: together
        assert manager._upload_path.name == "week3.webm" and saved() == [
            "week1.m4a",
            "week2.mp4",
            "week3.webm",
        ]
        assert "week3.webm" in manager.upload_note.object


def test_manager_actions_update_the_catalog(settings):
    """The manager's buttons do what they say (drained synchronously, no browser)."""
    from vidrag_dashboards.app import AppState
    from vidrag_dashboards.collection_manager import CollectionManager

    from vidrag_kernel import Workbench

    with Workbench(settings) as wb:
        manager = CollectionManager(AppState(wb))
        form, notices = manager.collections, manager.notices
        assert form.f_description.value == "Videos not in a course yet"  # Uncategorized, selected
        form.clear_form()
        assert form.f_description.value == "" and form.f_name.value == ""
        form.f_name.value = "Physics"
        form.f_semester.value = "Fall 2026"
        form.create()
        assert wb.collections.get("Physics").semester == "Fall 2026"
        assert wb.collections.get("Physics").description == ""
        assert manager.videos.target.options["Physics"]  # the other cards heard of it
        form.f_name.value = "Physics 101"
        form.save()
        assert wb.collections.get("Physics 101")
        form.f_name.value = "Physics 101"
        form.create_button.clicks += 1  # a duplicate name is its own message, not a traceback
        assert notices.status.alert_type == "danger"
        assert notices.status.object == "A collection named 'Physics 101' already exists"
        form.ask_delete()
        assert notices.confirm_row.visible
        notices.confirm_button.clicks += 1
        assert [c.name for c in wb.collections.list()] == ["Uncategorized"]


def test_the_edge_keeps_vidrag_messages_and_logs_anything_else(caplog):
    """Both apps report through ``feedback.guarded``: a VidragError's message as written for
    users; any other error logged with its traceback, and only a short message shown."""
    import logging

    from vidrag_dashboards.feedback import UNEXPECTED, guarded

    from vidrag_kernel.errors import NotFound

    def missing():
        raise NotFound("No collection called 'Physics'.")

    def broken():
        return {}["secret internal key"]

    said: list[str] = []
    with caplog.at_level(logging.ERROR, logger="vidrag_dashboards"):
        assert guarded(missing, said.append) is False
        assert not caplog.records  # the user's own mistake: not the server's log
        assert guarded(broken, said.append) is False
        assert guarded(said.append, said.append, "fine") is True
    assert said == ["No collection called 'Physics'.", UNEXPECTED, "fine"]
    assert "secret internal key" not in UNEXPECTED
    [record] = caplog.records
    assert record.exc_info[0] is KeyError and "in broken" in caplog.text  # with its traceback


def test_media_sources(settings, media_server, media_root):
    """Where each kind of video plays from, on a real catalog."""
    from vidrag_dashboards import media

    from vidrag_kernel import Workbench
    from vidrag_kernel.videos import VideoInfo

    wb = Workbench(settings)
    # YouTube is unreachable here: a record as ingest stores one is enough to choose the embed
    yt = VideoInfo(id="a", title="t", url="https://www.youtube.com/watch?v=abc", source_key="youtube:abc")
    assert media.playable(wb, yt) == media.Playable(
        "youtube", "https://www.youtube-nocookie.com/embed/abc", yt.page_url
    )
    # a page with <video>, ingested from its captions: its media plays directly
    [page] = wb.ingest(media_server.url("lecture.html"), captions="only")
    assert media.playable(wb, wb.videos.get(page.video_id)).src == media_server.url("lecture.mp4")
    # a local file, with no media route registered (Voila, notebooks): inlined
    [local] = wb.ingest(str(media_root / "lecture.webm"), captions="never")
    played = media.playable(wb, wb.videos.get(local.video_id))
    assert played.kind == "video" and played.src.startswith("data:video/webm;base64,")


# -- Voila notebook ------------------------------------------------------------------------------
@pytest.mark.slow
def test_voila_notebook_executes(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(DASHBOARDS / "workbench.ipynb", as_version=4)
    env = {
        "VIDRAG_HOME": str(tmp_path / "home"),
        "VIDRAG_USER": "student",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/student/",
        "HF_HUB_OFFLINE": "1",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the app displays as an ipywidget (jupyter_bokeh), which Voila renders
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "home" / "catalog.sqlite").exists()
    assert "jupyterlab_url()" in nb.cells[1].source


# -- the real browser ------------------------------------------------------------------------------
class PanelServer:
    """``panel serve dashboards/apps/*.py`` on a free port, in its own process group."""

    def __init__(self, home: Path, log: Path) -> None:
        self.port = free_port()
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDRAG_", "JUPYTERHUB_"))}
        env.update(
            VIDRAG_HOME=str(home),
            VIDRAG_USER="tester",
            VIDRAG_FETCH_ALLOW_HOSTS="127.0.0.1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            # the suite's speech model (tests/conftest.py)
            VIDRAG_WHISPER_MODEL=os.environ.get("VIDRAG_WHISPER_MODEL", "tiny.en"),
            **SMALL_CHUNKS,
        )
        self.log = log
        apps = [str(p) for p in sorted((DASHBOARDS / "apps").glob("*.py"))]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", *apps, "--plugins", "vidrag_dashboards.media",
             "--websocket-max-message-size", "300000000",
             "--address", "127.0.0.1", "--port", str(self.port),
             "--allow-websocket-origin", f"127.0.0.1:{self.port}", "--liveness"],
            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(self.url("liveness"), timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(log.read_text())

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel-serve")
    server = PanelServer(root / "home", root / "panel.log")
    yield server
    server.stop()


@pytest.mark.browser
@pytest.mark.slow
def test_workbench_session_in_a_browser(panel_server, browser, media_server):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    shot = Shots(page, "workbench")
    print(f"screenshots: {shot.dir}")
    page.set_default_timeout(30_000)
    page.goto(panel_server.url("workbench"))
    page.get_by_text("No videos yet").wait_for()
    shot("empty")

    with shot.on_failure():
        workbench_session(page, shot, media_server)
        _upload_a_lecture(page, shot, media_server.root / "lecture.m4a")
    assert not errors, errors
    page.close()

    # a new session, with the keyboard alone, on the uploaded lecture
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(30_000)
    page.goto(panel_server.url("workbench"))
    shot = Shots(page, "keyboard")
    with shot.on_failure():
        keyboard_session(page, shot, "How does binary search find an item?", "/lecture.m4a")
    assert not errors, errors
    page.close()


def _upload_a_lecture(page, shot, path: Path) -> None:
    """Upload a file from the browser: it is planned at once, ingests, and its transcript
    lines play the uploaded file (served by the media route) from their second."""
    page.get_by_role("tab", name="Collections").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text("Uploaded", exact=False).wait_for()
    page.locator(".vidrag-plan").get_by_text("1 video(s)").wait_for(timeout=60_000)
    page.locator(".vidrag-plan-table .tabulator-cell", has_text="asr").wait_for()
    shot("upload-planned")
    page.get_by_role("button", name="Ingest 1 video(s)").click()
    videos = page.locator(".vidrag-videos")
    videos.get_by_text("lecture", exact=True).wait_for(timeout=180_000)
    row = videos.locator(".tabulator-row").first
    row.get_by_text("ready").wait_for(timeout=180_000)
    select_first_row(videos)
    page.get_by_role("button", name="Transcript").click()
    line = page.locator(".vidrag-transcript .tabulator-row", has_text="binary search").first
    line.wait_for()
    start = clock(re.search(r"\d+:\d\d", line.inner_text()).group(0))
    # the uploaded file, served by the media route (the player held the deleted lecture.mp4)
    now = play_line(line, page.locator(".vidrag-player-transcript video"), src=f"/{path.name}")
    assert start - 1 <= now <= start + 4, (start, now)
    shot("upload-playing")


@pytest.mark.browser
@pytest.mark.slow
def test_each_app_renders_at_phone_width(panel_server, browser):
    for app in ("workbench", "manager", "chat"):
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.goto(panel_server.url(app))
        marker = "Create collection" if app == "manager" else "New conversation"
        page.get_by_text(marker).first.wait_for(timeout=30_000)
        shot = Shots(page, f"phone-{app}")
        shot("loaded")
        print(app, describe_violations(check_accessibility(page, f"the {app} app at phone width")))
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 400, f"{app} is {overflow}px wide at phone width"
        assert not errors, errors
        page.close()


def test_answer_states_are_spelled_out():
    """No relevant passage, and an LLM that fell back to extractive, each get their own note."""
    from vidrag_dashboards.chat_panel import Turn

    from vidrag_kernel.answer.types import Citation

    played = []
    turn = Turn("why?", played.append)
    turn.stream("Partial")
    assert turn.answer.object.startswith("Partial")
    cite = Citation(
        n=1, video_id="v", title="Lecture", url="u", start=61.0, end=75.5, score=0.9, text="t", link="l"
    )
    turn.finish("Because [1].", [cite], fallback_reason="timeout after 60 s")
    assert [c.name for c in turn.chips] == ["[1] Lecture · 1:01–1:16"]
    turn.chips[0].clicks += 1
    assert played == [cite]
    assert "timeout after 60 s" in turn.notes[0].object and "quotes the passages" in turn.notes[0].object
    turn.finish("Nothing.", [], no_answer=True)
    assert "No relevant passage" in turn.notes[0].object and len(turn.chips) == 0
