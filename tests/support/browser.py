"""Driving headless Debian chromium with Playwright: launch options, screenshots, Panel text,
axe-core accessibility checks, keyboard-only use, and the whole workbench session both
browser tests (`panel serve`, Voila in the hub) run."""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboards"
#: axe-core from npm (package.json), installed by ``make install`` beside the hub's proxy.
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail a page: WCAG 2.1 AA allows none of these.
BLOCKING = ("serious", "critical")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Chunk settings for the browser sessions: the test lecture is short, small chunks make
#: its citations point at single moments.
SMALL_CHUNKS = {
    "VIDRAG_CHUNK_TOKENS": "40",
    "VIDRAG_CHUNK_MIN_TOKENS": "8",
    "VIDRAG_CHUNK_OVERLAP_TOKENS": "0",
}


class Shots:
    """Numbered screenshots of a browser session, in ``test-artifacts/dashboards/<name>/``.

    A failed block (``on_failure``) also prints what CI's log can show of the page, since
    a clean-clone run keeps no screenshots: its address, its visible text, the browser's
    last console messages and failed requests, and the tail of ``log`` (a server's log)."""

    def __init__(self, page, name: str, log=None) -> None:
        self.page, self.dir, self.n, self.log = page, ARTIFACTS / name, 0, log
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.events: list[str] = []
        page.on("console", lambda m: self._note(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self._note(f"page error: {e}"))
        page.on("requestfailed", lambda r: self._note(f"request failed: {r.method} {r.url} {r.failure}"))
        page.on("websocket", lambda w: w.on("close", lambda _: self._note(f"websocket closed: {w.url}")))

    def _note(self, event: str) -> None:
        self.events = [*self.events[-39:], f"{time.strftime('%H:%M:%S')} {event[:400]}"]

    def __call__(self, step: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.dir / f"{self.n:02d}-{step}.png"), full_page=True)

    @contextlib.contextmanager
    def on_failure(self):
        """Save a last ``failed`` screenshot when the block raises, print the diagnosis, raise."""
        try:
            yield
        except Exception:
            with contextlib.suppress(Exception):
                self("failed")
            print(self.diagnosis())
            raise

    def diagnosis(self) -> str:
        """What the page shows and what the browser and the server said, as text."""
        try:
            text = self.page.evaluate("() => document.body ? document.body.innerText : ''")
            where = self.page.url
        except Exception as exc:  # a closed or crashed page
            text, where = f"(no page text: {exc})", "?"
        parts = [f"--- page {where} at {time.strftime('%H:%M:%S')}", str(text)[:1500], "--- browser"]
        parts += self.events or ["(nothing)"]
        if self.log is not None:
            parts += ["--- server log (tail)", self.log()[-6000:]]
        return "\n".join(parts)


def wait_for_chat(page, shot: Shots, first_ms: float = 90_000, again_ms: float = 180_000) -> None:
    """Wait for the Voila workbench's chat ("New conversation") on a page that has loaded.

    KNOWN BUG, not found yet: twice in clean-clone CI runs on a loaded machine the page
    loaded but its widgets never rendered (the instructor's first login, in
    test_dashboards_hub and test_join_browser). A person would reload; so does this, once,
    after ``first_ms``, with a warning that carries the page's diagnosis (``Shots.diagnosis``:
    pytest prints warnings even when the test then passes). If the reloaded page does not
    render either, the test fails as before."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    chat = page.get_by_text("New conversation").first
    try:
        chat.wait_for(timeout=first_ms)
        return
    except PlaywrightTimeout:
        warnings.warn(
            f"the workbench chat did not render in {first_ms / 1000:.0f} s; reloading once.\n"
            + shot.diagnosis()[-4000:],
            stacklevel=2,
        )
    page.reload()
    chat.wait_for(timeout=again_ms)


def panel_text(locator) -> str:
    """The text of a Panel component, whose content lives in a shadow root."""
    return locator.evaluate(
        "el => Array.from((el.shadowRoot || el).children)"
        ".filter(e => !['STYLE', 'LINK'].includes(e.tagName)).map(e => e.textContent).join(' ')"
    )


def ask(page, question: str, *, timeout: float = 60_000) -> str:
    """Ask in the chat (Enter submits), wait for citation chips; the answer's text."""
    box = page.get_by_placeholder("Ask a question and press Enter")
    box.fill(question)
    box.press("Enter")
    page.locator(".vidrag-citation button").first.wait_for(timeout=timeout)
    return panel_text(page.locator(".vidrag-answer").last)


def stylesheet_links(page, host: str) -> list[str]:
    """Stylesheets the page links from ``host``, in the document and every shadow root."""
    return page.evaluate(
        """host => {
            const found = [];
            const walk = root => {
                for (const el of root.querySelectorAll('*')) {
                    if (el.tagName === 'LINK' && el.href.includes(host)) found.push(el.href);
                    if (el.shadowRoot) walk(el.shadowRoot);
                }
            };
            walk(document);
            return found;
        }""",
        host,
    )


def axe_violations(page) -> list[dict]:
    """axe-core's violations on ``page`` as it is now (the document and its open shadow roots,
    where Panel renders), with WCAG 2.1 A and AA rules and axe's best practices."""
    assert AXE.exists(), f"{AXE} is missing: run `make install` (npm install)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary, html: n.html.slice(0, 160)}))
        }))"""
    )


def describe_violations(violations: list[dict]) -> str:
    """One paragraph per violation: rule, impact, help, and where (the first nodes)."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} node(s)]")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html']}")
            lines.append("      " + (node["summary"] or "").replace("\n", "\n      "))
    return "\n".join(lines)


def check_accessibility(page, where: str) -> list[dict]:
    """Run axe-core on ``page``; fail on any serious or critical violation, listing them all.

    Returns the violations of lesser impact (moderate, minor), which the caller may print."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"axe-core on {where}: {len(blocking)} serious or critical\n" + describe_violations(
        violations
    )
    return violations


def focused(page) -> dict:
    """What has the keyboard focus, looking through shadow roots: tag, type, label, text, classes
    of the focused element and of its shadow hosts."""
    return page.evaluate(
        """() => {
            let el = document.activeElement, hosts = [];
            while (el && el.shadowRoot && el.shadowRoot.activeElement) {
                hosts.push(el.className || '');
                el = el.shadowRoot.activeElement;
            }
            if (!el) return null;
            return {tag: el.tagName.toLowerCase(), type: el.type || '', row: !!el.closest('.tabulator-row'), text: (el.innerText || '').trim(),
                    label: el.getAttribute('aria-label') || el.placeholder || '', value: el.value ?? '',
                    classes: String(el.className || ''), hosts: hosts.join(' ')};
        }"""
    )


def tab_to(page, matches, *, limit: int = 120, key: str = "Tab") -> dict:
    """Press Tab (or ``key``) until the focused element ``matches`` (a function of
    :func:`focused`'s answer); that element. Fails after ``limit`` presses."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if now and matches(now):
            return now
        seen.append(now and (now["tag"], now["text"][:30] or now["label"][:30], now["hosts"][-40:]))
    raise AssertionError(f"{limit} × {key} never reached the element; focus went: {seen}")


def play_line(line, player, *, src: str = "", timeout: float = 90.0) -> float:
    """Click a transcript ``line`` (a locator) and return where ``player`` then plays
    (``player_position``), clicking the line again every 20 s while the player has not
    started.

    In two of four clean-clone CI runs at load (and one earlier), the first click on a
    freshly shown transcript did not start the player: none appeared in 60 s, although the
    same session passes alone. A user clicks again; so does this. The cause (a Tabulator redraw
    under the click is the suspect) is not found."""
    deadline = time.monotonic() + timeout
    while True:
        line.click()
        try:
            return player_position(player, src=src, timeout=min(20.0, max(1.0, deadline - time.monotonic())))
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            warnings.warn(
                "a transcript line's click did not start the player in 20 s: clicking again", stacklevel=2
            )


def player_position(player, *, src: str = "", timeout: float = 60.0) -> float:
    """Where the ``<video>`` of ``player`` (a locator) is, once its source ends with ``src``,
    its metadata has loaded and it has left 0: the first such reading.

    The locator is looked up afresh on each try (polling every 0.1 s): a new source builds a
    new element, so a handle taken at the click could be the one it replaces."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        try:
            state = player.evaluate("v => [v.src, v.readyState, v.currentTime]", timeout=1_000)
        except PlaywrightError:  # not rendered yet, or replaced while we looked
            state = None
        if state and state[0].endswith(src) and state[1] >= 1 and state[2] > 0:
            return state[2]
        time.sleep(0.1)
    raise AssertionError(f"the player never started on …{src}: [src, readyState, currentTime] = {state}")


def select_first_row(table, *, timeout: float = 60.0) -> None:
    """Tick the first row of a Tabulator ``table`` (a locator) and see it stay ticked.

    The app redraws a table when its data changes (an ingest finishing rereads the videos a
    moment after the row shows "ready"), and a redraw between Playwright's click and its
    check loses the tick ("Clicking the checkbox did not change its state", seen in a
    clean-clone CI run at load). So the row is looked up afresh and ticked again until it
    holds."""
    deadline = time.monotonic() + timeout
    while True:
        box = table.locator(".tabulator-row").first.locator("input[type=checkbox]")
        try:
            box.check(timeout=10_000)
            time.sleep(0.5)  # a redraw already on its way
            if box.is_checked(timeout=5_000):
                return
        except PlaywrightError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the table's first row would not stay ticked")


def serve_panel(apps: dict, port: int):
    """``pn.serve`` the ``apps`` on a thread at 127.0.0.1:``port``, and return it once the
    port takes connections: the thread binds it a moment after ``pn.serve`` returns, and a
    page opened before then is refused (ERR_CONNECTION_REFUSED, seen in a clean-clone CI
    run at load). The caller stops it (``server.stop()``)."""
    import socket

    import panel as pn

    server = pn.serve(apps, port=port, address="127.0.0.1", show=False, threaded=True, verbose=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"panel serve never listened on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def clock(text: str) -> float:
    """Seconds from the last ``m:ss`` of a label such as ``1:05``."""
    m, s = text.split(":")[-2:]
    return int(m) * 60 + int(s)


def workbench_session(page, shot: Shots, media_server) -> None:
    """A whole session on the workbench app open in ``page`` (``panel serve`` or Voila).

    Create a collection; plan and ingest the test lecture from ``media_server`` watching
    progress reach done; a corrupt file fails with its message and can be retried; ask and
    get a streamed answer with citations; a citation and a transcript line each play the
    video from their second; delete the video and it is gone from answers. axe-core checks
    the manager (with a plan), the chat with an answer and its player, and the transcript.
    """
    # 1. create a collection
    page.get_by_role("tab", name="Collections").click()
    page.get_by_role("button", name="New collection").click()  # the form held the selected one
    name = page.get_by_label("Name", exact=True)
    # the kernel empties the form; typing before that lands would be overwritten by it
    expect(name).to_have_value("")
    name.fill("Algorithms")
    page.get_by_label("Instructor").fill("Ada Lovelace")
    page.get_by_label("Tags (comma separated)").fill("cs, week1")
    page.get_by_role("button", name="Create collection").click()
    page.get_by_text("Created collection “Algorithms”").wait_for()
    page.locator(".vidrag-collections").get_by_text("Ada Lovelace").wait_for()
    assert page.get_by_label("Description").input_value() == ""  # nothing copied from another
    shot("collection-created")

    # 2. plan, then ingest the lecture with live progress until done
    page.get_by_label("Video, playlist or channel URL").fill(media_server.url("lecture.mp4"))
    page.get_by_role("button", name="Check").click()
    page.locator(".vidrag-plan").get_by_text("1 video(s)").wait_for()
    page.locator(".vidrag-plan-table .tabulator-cell", has_text="asr").wait_for()  # transcript from
    shot("plan")
    check_accessibility(page, "the collection manager with a plan")
    page.get_by_role("button", name="Ingest 1 video(s)").click()
    page.locator(".vidrag-progress").first.wait_for()
    seen = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        stages = page.locator(".vidrag-progress").evaluate_all("els => els.map(e => e.dataset.stage)")
        seen.update(stages)
        if "done" in stages or "failed" in stages:
            break
        if seen - {"queued"} and "progress" not in seen:
            seen.add("progress")
            shot("ingest-progress")
        time.sleep(0.2)
    shot("ingest-done")
    assert "done" in seen, panel_text(page.locator(".vidrag-progress-list"))
    assert seen & {"fetching", "transcribing", "embedding"}, seen  # progress was live, not only the end
    page.get_by_text("Ingest finished: 1 video(s) ready").wait_for()
    page.locator(".vidrag-videos").get_by_text("lecture", exact=True).wait_for()

    # 2b. a file that is not media fails with its message, is listed, and can be retried
    url_box = page.get_by_label("Video, playlist or channel URL")
    url_box.fill(media_server.url("corrupt.m4a"))
    page.get_by_role("button", name="Check").click()
    page.locator(".vidrag-plan").get_by_text("corrupt").wait_for()
    page.get_by_role("button", name="Ingest 1 video(s)").click()
    page.locator(".vidrag-progress[data-stage=failed]").wait_for(timeout=60_000)
    page.get_by_text("1 failed (could not decode audio").wait_for()
    failed = page.locator(".vidrag-failed-jobs .tabulator-row", has_text="could not decode audio")
    failed.wait_for()
    shot("ingest-failed")
    failed.click()
    page.get_by_role("button", name="Retry").click()
    page.get_by_text("Retry failed again: could not decode audio").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Chat").click()
    page.get_by_text("1 ingest(s) failed (see").wait_for()
    shot("chat-says-an-ingest-failed")

    # 3. ask in the chat (Enter submits); the answer streams in with citations
    page.get_by_role("tab", name="Chat").click()
    answer = ask(page, "How does binary search find an item?")
    assert "[1]" in answer and ("sorted list" in answer or "logarithmic" in answer), answer
    shot("answer")

    # 4. a citation plays the video from its second
    chip = page.locator(".vidrag-citation button").first
    label = chip.inner_text()
    start = clock(re.search(r"(\d+:\d\d)–", label).group(1))
    chip.click()
    player = page.locator(".vidrag-player-chat video")
    now = player_position(player, src=media_server.url("lecture.mp4"))
    assert start - 1 <= now <= start + 4, (label, now)
    shot("citation-playing")
    check_accessibility(page, "the chat with an answer, its player playing")

    # 5. a transcript line plays the video from that line
    page.get_by_role("tab", name="Collections").click()
    videos = page.locator(".vidrag-videos")
    select_first_row(videos)
    page.get_by_role("button", name="Transcript").click()
    line = page.locator(".vidrag-transcript .tabulator-row", has_text="French Revolution").first
    line.wait_for()
    line_start = clock(re.search(r"\d+:\d\d", line.inner_text()).group(0))
    now = play_line(
        line, page.locator(".vidrag-player-transcript video"), src=media_server.url("lecture.mp4")
    )
    assert line_start - 1 <= now <= line_start + 4, (line_start, now)
    shot("transcript-playing")
    check_accessibility(page, "the transcript with its player")

    # 6. delete the video (confirmed) and it is gone from answers
    select_first_row(videos)
    page.get_by_role("button", name="Delete selected").click()
    page.locator(".vidrag-confirm").get_by_text("Delete 1 video(s)").wait_for()
    shot("confirm-delete")
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Deleted 1 video(s).").wait_for()
    assert videos.locator(".tabulator-row").count() == 0
    page.get_by_role("tab", name="Chat").click()
    page.get_by_role("button", name="New conversation").click()
    question = page.get_by_placeholder("Ask a question and press Enter")
    question.fill("How does binary search find an item?")
    question.press("Enter")
    page.locator(".vidrag-no-answer").last.wait_for(timeout=60_000)
    assert page.locator(".vidrag-citation").count() == 0
    shot("gone-from-answers")


def keyboard_session(page, shot: Shots, question: str, src: str) -> None:
    """Use the workbench open in ``page`` with the keyboard alone, as a new user would: Tab
    to the question box, type and press Enter; move back to a citation and play it with
    Enter; switch to the Collections tab with the arrow keys; tick a video with Space and
    open its transcript. The video (whose source ends with ``src``) must be ready."""
    page.locator(".vidrag-question-input input").wait_for()
    tab_to(page, lambda f: f["label"] == "Ask a question and press Enter")
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    page.locator(".vidrag-citation button").first.wait_for(timeout=60_000)
    chip = tab_to(page, lambda f: "vidrag-citation" in f["hosts"], key="Shift+Tab")
    start = clock(re.search(r"(\d+:\d\d)–", chip["text"]).group(1))
    page.keyboard.press("Enter")
    now = player_position(page.locator(".vidrag-player-chat video"), src=src)
    assert start - 1 <= now <= start + 4, (chip["text"], now)
    shot("keyboard-citation-playing")

    tab_to(page, lambda f: f["text"] == "Chat" and "vidrag-tab" in f["classes"], key="Shift+Tab")
    page.keyboard.press("ArrowRight")
    assert focused(page)["text"] == "Collections"
    page.get_by_role("tab", name="Collections", selected=True).wait_for()
    tab_to(page, lambda f: f["type"] == "checkbox" and f["row"] and "vidrag-videos" in f["hosts"])
    page.keyboard.press("Space")
    tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "Transcript")
    page.keyboard.press("Enter")
    page.locator(".vidrag-transcript .tabulator-row").first.wait_for()
    shot("keyboard-transcript")
