"""The dashboards as users meet them: through JupyterHub's login, in Voila, in a real browser.

The hub runs ``make run``'s configuration (demo login, local process spawner, proxy) on free
loopback ports; the student's "Sample course" is seeded the way ``make run`` seeds it. Headless
chromium logs in on the hub's own form and lands on the Voila dashboard in the user's server.
The student asks about the sample lecture and plays every citation; the instructor goes
through the whole session of the ``panel serve`` test (create, ingest with progress, a failed
ingest and its retry, ask, play a citation and a transcript line, delete). Screenshots go to
``test-artifacts/dashboards/hub/`` and ``hub-session/``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from hub_config.seed import seed
from tests.support.browser import (
    SMALL_CHUNKS,
    Shots,
    ask,
    check_accessibility,
    clock,
    describe_violations,
    stylesheet_links,
    wait_for_chat,
    workbench_session,
)
from tests.support.hub import Hub, hub_env
from tests.support.speech import ffmpeg

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.slow]

PASSWORD = "demo-password-for-dashboards"
LANDING = "/user/{user}/voila/render/vidrag/workbench.ipynb"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-dashboards")
    env = hub_env(
        root / "data",
        VIDRAG_AUTH="demo",
        VIDRAG_DEMO_PASSWORD=PASSWORD,
        # deployment-wide settings reach the servers: fetch from the test media server, small chunks
        VIDRAG_FETCH_ALLOW_HOSTS="127.0.0.1",
        **SMALL_CHUNKS,
    )
    assert seed(Path(env["VIDRAG_HOME"]), ["student"]) == ["student"]
    hub = Hub(root=root, env=env).start()
    yield hub
    survivors = hub.stop()
    assert survivors == [], f"left running after the hub stopped: {survivors}"


def _log_in(browser, hub, user: str, shot_name: str):
    """A new browser session logged in as ``user`` on the hub's own form, on the Voila
    dashboard the server sends people to; the page, its screenshots and its page errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    shot = Shots(page, shot_name, log=hub.log)
    page.set_default_timeout(60_000)
    with shot.on_failure():
        page.goto(f"{hub.url}/hub/login")
        page.locator("input[name=username]").fill(user)
        page.locator("input[name=password]").fill(PASSWORD)
        shot("login")
        page.locator("input[name=password]").press("Enter")
        page.wait_for_url(f"{hub.url}{LANDING.format(user=user)}*", timeout=180_000)
        wait_for_chat(page, shot)
    return page, shot, errors


def test_student_logs_in_lands_on_voila_asks_and_plays_a_citation(hub, browser):
    # 1. the hub's own login form; then spawn, and the server sends the browser to Voila
    page, shot, errors = _log_in(browser, hub, "student", "hub")

    # 2. the dashboard renders in Voila with the seeded course, JupyterLab one click away
    lab = page.get_by_role("link", name="Open JupyterLab")
    assert lab.get_attribute("href") == "/user/student/lab"
    page.locator(".vidrag-turns").wait_for()
    # Panel's stylesheets come inline from the server's own Panel, not from its CDN
    assert stylesheet_links(page, "cdn.holoviz.org") == []
    shot("landed-on-voila")
    # the Voila page as a new user meets it, checked as WCAG 2.1 AA asks
    print(describe_violations(check_accessibility(page, "the Voila chat as a new user lands on it")))

    # 3. ask about the sample lecture; the answer comes with citation chips
    answer = ask(page, "What do routers keep to decide where packets go?", timeout=120_000)
    assert "[1]" in answer and "routing table" in answer, answer
    shot("answer")

    # 4. the quote about routing tables has its own citation, at the moment it was said
    #    (00:47 in samples/lecture.vtt)
    n = re.search(r"routing table[^\n]*\[(\d+)\]", answer).group(1)
    label = page.locator(".vidrag-citation button", has_text=f"[{n}]").inner_text()
    assert 44 <= clock(re.search(r"(\d+:\d\d)–", label).group(1)) <= 50, label

    # 5. every chip (last first) plays the lecture from its own second, in the page
    chips = page.locator(".vidrag-citation button")
    assert chips.count() >= 2, answer
    player = page.locator(".vidrag-player-chat video")
    for i in reversed(range(chips.count())):
        label = chips.nth(i).inner_text()
        start = clock(re.search(r"(\d+:\d\d)–", label).group(1))
        chips.nth(i).click()
        player.wait_for()
        page.wait_for_function(
            "([el, t]) => el.readyState >= 1 && Math.abs(el.currentTime - t) < 4",
            arg=[player.element_handle(), start + 1.5],
            timeout=30_000,
        )
        if i == int(n) - 1:
            shot("citation-playing")
    check_accessibility(page, "the Voila chat with an answer, its player playing")
    assert not errors, errors
    page.close()


def test_a_whole_workbench_session_in_voila(hub, browser, media_server):
    """The same session as the ``panel serve`` test, in a server started through the hub.

    As the instructor, whose sample course is not seeded here: the session ends by checking
    that a deleted video is gone from answers, which needs no other lecture in scope.
    """
    page, shot, errors = _log_in(browser, hub, "instructor", "hub-session")
    with shot.on_failure():
        workbench_session(page, shot, media_server)
    assert not errors, errors
    page.close()


def test_a_large_upload_reaches_the_voila_dashboard(hub, browser, media_server, tmp_path):
    """A ~11 MB file is a ~14 MB websocket message: over Jupyter's default limit (10 MiB),
    which hub_config raises for the users' servers."""
    big = tmp_path / "lecture-48k.wav"
    subprocess.run(
        [ffmpeg(), "-y", "-loglevel", "error", "-i", str(media_server.root / "lecture.m4a")]
        + ["-ar", "48000", "-ac", "2", str(big)],
        check=True,
    )
    assert big.stat().st_size > 10 * 2**20 * 3 / 4
    page, shot, errors = _log_in(browser, hub, "instructor", "hub-upload")
    with shot.on_failure():
        page.get_by_role("tab", name="Collections").click()
        page.locator("input[type=file]").set_input_files(str(big))
        page.get_by_text("Uploaded lecture-48k.wav", exact=False).wait_for(timeout=120_000)
        page.locator(".vidrag-plan").get_by_text("1 video(s)").wait_for(timeout=60_000)
        shot("uploaded")
    assert not errors, errors
    page.close()
