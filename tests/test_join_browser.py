"""A share link from end to end, in a real browser, through a real JupyterHub and the real
service the hub starts (``make run``'s configuration with the service on).

1. The instructor logs in, opens the Sharing card of the shared "Sample course" (seeded as
   ``make run`` seeds it) in the Voila workbench, and creates a link.
2. A student opens the link, logs in on the hub's form, comes back to the join page (which
   names the course, its owner and the role), accepts, lands on the chat with the course
   selected, asks, and a citation seeks the player, which plays the service's copy of the
   lecture (the media route, with the student's session on the service).
3. The instructor revokes the link; a second student who opens it sees the revoked page.

axe-core checks the join page and the revoked page. Screenshots go to
``test-artifacts/dashboards/join/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import (
    Shots,
    ask,
    check_accessibility,
    clock,
    describe_violations,
    player_position,
    wait_for_chat,
)
from tests.support.service import PASSWORD, ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.slow]

LANDING = "/user/{user}/voila/render/vidrag/workbench.ipynb"
USERS = ("instructor", "student", "student2")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from hub_config.seed import seed_shared

    hub = ServiceHub(tmp_path_factory.mktemp("join-hub"), start_service=True)
    hub.hub.env.update(
        VIDRAG_DEMO_USERS=",".join(USERS),
        VIDRAG_INGEST_WORKERS="0",  # nothing is ingested through the service here
    )
    # the instructor's shared course, as `make run` seeds it, shared with nobody yet
    seed_shared(Path(hub.hub.env["VIDRAG_HOME"]) / "shared", "instructor", "no-such-group")
    hub.hub.start(timeout=180)
    yield hub
    assert hub.stop() == []


def new_page(browser, name: str, hub):
    """A fresh browser context (its own cookies: another person) and its page."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, Shots(page, f"join/{name}", log=hub.hub.log), errors


def hub_login(page, user: str) -> None:
    """Fill in the hub's own login form, where the page is now."""
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")


def sharing_card(page, hub, shot) -> None:
    """The instructor's workbench on the Collections tab, the shared course in focus."""
    page.goto(f"{hub.hub.url}/hub/login")
    hub_login(page, "instructor")
    page.wait_for_url(f"{hub.hub.url}{LANDING.format(user='instructor')}*", timeout=240_000)
    wait_for_chat(page, shot)
    page.get_by_role("tab", name="Collections").click()
    page.get_by_label("Collection", exact=True).select_option(label="Sample course · shared by you")
    page.get_by_text("Share links").wait_for()


def test_a_student_joins_by_link_and_a_revoked_link_says_so(hub, browser):
    # 1. the instructor makes a link in the Sharing card
    teacher, shot, teacher_errors = new_page(browser, "instructor", hub)
    with shot.on_failure():
        sharing_card(teacher, hub, shot)
        teacher.get_by_role("button", name="Create link").click()
        teacher.get_by_text("shown only this once").wait_for()
        link = teacher.get_by_label("New share link").input_value()
        shot("link-created")
    assert "/services/vidrag/join/" in link, link
    if link.startswith("/"):
        link = hub.hub.url + link

    # 2. a student opens it: the hub's login first, then the join page
    student, shot, student_errors = new_page(browser, "student", hub)
    with shot.on_failure():
        student.goto(link)
        student.wait_for_url(re.compile(r".*/hub/login.*"))
        shot("login")
        hub_login(student, "student")
        student.get_by_role("heading", name="Join “Sample course”").wait_for()
        text = student.locator("main").inner_text()
        assert "instructor" in text and "viewer" in text, text
        shot("join-page")
        print(describe_violations(check_accessibility(student, "the join page")))
        student.get_by_role("button", name="Accept and open the chat").click()
        # the hub starts the student's server and sends the browser to the chat
        student.wait_for_url(f"{hub.hub.url}{LANDING.format(user='student')}?collection=*", timeout=240_000)
        wait_for_chat(student, shot)
        scope = student.get_by_label("Ask", exact=True)
        assert "Sample course" in scope.locator("option:checked").inner_text(), scope.inner_html()
        shot("chat")

        answer = ask(student, "What do routers keep to decide where packets go?", timeout=120_000)
        assert "routing table" in answer, answer
        n = re.search(r"routing table[^\n]*\[(\d+)\]", answer).group(1)
        chip = student.locator(".vidrag-citation button", has_text=f"[{n}]")
        start = clock(re.search(r"(\d+:\d\d)–", chip.inner_text()).group(1))
        chip.click()
        player = student.locator(".vidrag-player-chat video")
        # the service's copy of the lecture, streamed with the student's session on it
        now = player_position(player, src="/media", timeout=60)
        assert start - 1 <= now <= start + 4, (start, now)
        src = player.evaluate("v => v.src")
        assert "/services/vidrag/api/collections/" in src, src
        shot("citation-playing")
    assert not student_errors, student_errors

    # 3. the instructor revokes it; the next student is told so
    with shot.on_failure():
        teacher.locator(".vidrag-links-table .tabulator-row").first.click()
        teacher.get_by_role("button", name="Revoke selected link").click()
        teacher.locator(".vidrag-links-table").get_by_text("revoked").wait_for()
    assert not teacher_errors, teacher_errors

    late, shot, _ = new_page(browser, "student2", hub)
    with shot.on_failure():
        late.goto(link)
        late.wait_for_url(re.compile(r".*/hub/login.*"))
        hub_login(late, "student2")
        late.get_by_role("heading", name="This link can no longer be used").wait_for()
        assert "revoked" in late.locator("main").inner_text()
        assert late.request.get(link).status == 410
        shot("revoked")
        print(describe_violations(check_accessibility(late, "the revoked-link page")))
    for page in (teacher, student, late):
        page.context.close()
