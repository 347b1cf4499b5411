"""``make run``'s start-up path: ``python -m hub_config.launch`` from a clean data directory.

It seeds the sample course, starts the hub, prints the URL and the logins; a demo user logs
in and gets a server; Ctrl-C (SIGINT to the launcher's process group, as a terminal sends
it) stops the hub, the proxy and the server; a second start reuses everything and is quick.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from hub_config.seed import COLLECTION, MARKER, SAMPLE
from tests.support.hub import REPO, hub_env, login_form, reap

pytestmark = [pytest.mark.hub, pytest.mark.slow]


class Launcher:
    """``python -m hub_config.launch`` in its own process group, its output read line by line."""

    def __init__(self, env: dict[str, str], log) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub_config.launch"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.output.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n{''.join(self.output)}")

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def ctrl_c(self, timeout: float = 60) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Two ``make run`` starts on a fresh data directory; what each showed and left behind."""
    tmp_path = tmp_path_factory.mktemp("launch")
    home = tmp_path / "vidrag-home"  # nothing there yet: launch creates it
    env = hub_env(home)
    log = (tmp_path / "launch.log").open("w")
    result: dict = {"home": home, "env": env}
    launchers: list[Launcher] = []
    try:
        _run_twice(env, log, result, launchers)
    finally:
        # a failed step must not leave a hub running: stop what is still up, and its tree
        for launcher in launchers:
            if launcher.proc.poll() is None:
                tree = launcher.tree()
                launcher.ctrl_c()
                reap(tree)
    return result


def _run_twice(env: dict[str, str], log, result: dict, launchers: list) -> None:
    first = Launcher(env, log)
    launchers.append(first)
    url = first.wait_for(r"vidrag is running at (http://127\.0\.0\.1:\d+)/", timeout=300).group(1)
    result["url"] = url
    result["password"] = first.wait_for(r"log in as instructor or student, password: (\S+)", timeout=5).group(
        1
    )

    with httpx.Client(timeout=60) as client:
        result["login"] = login_form(client, url, "instructor", result["password"]).status_code
        client.get(f"{url}/hub/spawn", follow_redirects=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lab = client.get(f"{url}/user/instructor/lab", follow_redirects=True)
            if lab.status_code == 200 and str(lab.url).endswith("/user/instructor/lab"):
                break
            time.sleep(1)
        result["status"] = client.get(f"{url}/user/instructor/api/status").status_code

    running = first.tree()
    result["commands"] = [" ".join(p.cmdline()) for p in running]
    result["first_exit"] = first.ctrl_c()
    result["first_survivors"] = reap(running)
    result["first_output"] = "".join(first.output) + "".join(iter_rest(first))

    started = time.monotonic()
    second = Launcher(env, log)
    launchers.append(second)
    second.wait_for(r"vidrag is running at", timeout=180)
    result["second_start"] = time.monotonic() - started
    result["second_password"] = second.wait_for(r"password: (\S+)", timeout=5).group(1)
    result["second_output"] = "".join(second.output)
    running = second.tree()
    result["second_exit"] = second.ctrl_c()
    result["second_survivors"] = reap(running)


def test_make_run_starts_serves_and_stops_cleanly(runs):
    home, env = runs["home"], runs["env"]
    assert runs["url"] == f"http://127.0.0.1:{env['VIDRAG_HUB_PORT']}"
    password_file = home / "demo-password"
    assert password_file.read_text().strip() == runs["password"]
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert (home / "hub" / "jupyterhub.sqlite").exists()
    assert runs["login"] == 302 and runs["status"] == 200
    assert any("configurable-http-proxy" in c for c in runs["commands"])
    assert any("jupyterhub.singleuser" in c for c in runs["commands"])
    # Ctrl-C: clean exit, nothing left running
    assert runs["first_exit"] == 0 and runs["first_survivors"] == []
    assert "stopped." in runs["first_output"]


def test_a_second_make_run_reuses_everything(runs):
    # the first run seeds the sample course; the second finds it and only starts the hub
    # (how fast that is is a figure for a benchmark, not a bound for a test on a shared
    # machine: it is kept in runs["second_start"])
    assert "first start: ingesting the sample lecture" in runs["first_output"]
    assert "ingesting the sample lecture" not in runs["second_output"]
    assert "seeding" not in runs["second_output"]
    assert runs["second_password"] == runs["password"]
    assert runs["second_exit"] == 0 and runs["second_survivors"] == []


def test_first_start_shared_the_instructors_sample_course_with_the_course_group(runs):
    """With the vidrag service (make run's default) the sample course is the instructor's,
    on the service's data root, and the cs101 group (the student) may view it."""
    assert SAMPLE.exists(), "samples/lecture.webm is missing"
    from vidrag_hub.access import RoleAccess
    from vidrag_hub.auth import HubUser
    from vidrag_hub.db import open_database

    from vidrag_kernel import Settings
    from vidrag_kernel.library import LocalLibrary

    shared = runs["home"] / "shared"
    assert (shared / MARKER).exists(), runs["first_output"]
    settings = Settings.from_env(home=shared, user="student")
    catalog = open_database(settings.resolved_database_url)
    try:
        as_student = LocalLibrary(
            settings, catalog=catalog, access=RoleAccess(HubUser("student", groups=frozenset({"cs101"})))
        )
        course = as_student.collections.get(COLLECTION)
        assert (course.owner, course.role, course.video_count) == ("instructor", "viewer", 1)
        stranger = LocalLibrary(settings, catalog=catalog, access=RoleAccess(HubUser("someone")))
        assert COLLECTION not in [c.name for c in stranger.collections.list()]
    finally:
        catalog.close()
    # the student's own data stays personal: nothing was put there
    assert not (runs["home"] / "users" / "student" / MARKER).exists()
    assert "ingesting the sample" not in runs["second_output"]


def iter_rest(launcher: Launcher) -> list[str]:
    """Lines printed after the last ``wait_for``."""
    rest = []
    while not launcher.lines.empty():
        rest.append(launcher.lines.get())
    return rest
