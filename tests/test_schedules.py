"""Scheduled batch ingests in the service, against a real JupyterHub.

The service is the real app on uvicorn with real Dask ingest workers and the real
APScheduler; each run executes the batch-ingest notebook with papermill in a kernel
whose ``Workbench()`` reaches the service with a run token, and ingests captioned
lectures served on 127.0.0.1 through the service's own ingest API.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser
from vidrag_hub.batchrun import BatchRunner, where_it_stopped
from vidrag_hub.models import utcnow
from vidrag_hub.scheduler import Schedule, Scheduler, ScheduleRun

from tests.support.media_server import MediaServer
from tests.support.service import Served, ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "notebooks" / "01_batch_ingest.ipynb"
STANDIN = REPO / "tests" / "data" / "batch_ingest_standin.ipynb"
NOTEBOOK = REAL if REAL.exists() else STANDIN
API = "/services/vidrag/api"
# room for every test's lectures on the default plan; "one" holds a single video
PLANS = {
    "plans": {
        "free": {"videos": 50, "minutes": 600, "messages": 500, "storage_gb": 5},
        "one": {"videos": 1, "minutes": 600, "messages": 500, "storage_gb": 5},
    }
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory, media_root):
    """Captioned lecture pages a, b (and c, published later by a test) on 127.0.0.1."""
    root = tmp_path_factory.mktemp("schedule-pages")
    server = MediaServer(root)
    server.publish = lambda name: publish(media_root, root, name)
    for name in ("a", "b"):
        publish(media_root, root, name)
    yield server
    server.stop()


def publish(media_root: Path, root: Path, name: str) -> None:
    """A new lecture page ``<name>.html`` (its own video: its own media and captions)."""
    shutil.copy(media_root / "lecture.mp4", root / f"{name}.mp4")
    shutil.copy(media_root / "lecture.vtt", root / f"{name}.vtt")
    html = (media_root / "lecture.html").read_text()
    (root / f"{name}.html").write_text(
        html.replace("lecture.", f"{name}.").replace("Three topics", f"Lecture {name.upper()}")
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("schedules-hub")).start()
    for name in ("alice", "bob", "carol"):
        hub.user(name)
    hub.group("instructors", ["alice"])
    yield hub
    assert hub.stop() == []


@pytest.fixture(scope="module")
def service(hub, tmp_path_factory):
    """The app served on the hub's service port, with its ingest workers and its scheduler."""
    url = f"http://127.0.0.1:{hub.service_port}"
    app = make_app(
        hub.settings(tmp_path_factory.mktemp("schedules-root"), service_url=url + "/", plans=PLANS)
    )
    runner = app.state.service.ingest_workers()
    runner.start()
    app.state.runner = runner
    scheduler = Scheduler(app.state.service, runner=BatchRunner(app.state.service, notebook=NOTEBOOK))
    scheduler.start()
    app.state.scheduler = scheduler
    try:
        with Served(app, hub.service_port) as served:
            app.served = served
            yield app
    finally:
        app.state.scheduler.stop()
        runner.close()


@pytest.fixture(scope="module")
def tokens(hub):
    return {name: hub.token(name) for name in ("alice", "bob", "carol")}


def call(app, token, method, path, **kwargs) -> httpx.Response:
    return httpx.request(
        method,
        f"{app.served.url}{API}/{path}",
        headers={"Authorization": f"token {token}"},
        timeout=60,
        **kwargs,
    )


def course(app, name: str, owner: str = "alice") -> str:
    """A shared collection of ``owner``'s with bob (or alice) as editor and carol as viewer."""
    from vidrag_hub import sharing

    from vidrag_kernel.catalog import Collection

    service = app.state.service
    info = service.library(HubUser(owner)).collections.create(name)
    editor = "bob" if owner != "bob" else "alice"
    with service.catalog.session() as s:
        row = s.get(Collection, info.id)
        sharing.grant(s, row, "user", editor, "editor", owner)
        sharing.grant(s, row, "user", "carol", "viewer", owner)
    return info.id


def wait_runs(app, token, schedule_id, count: int, timeout: float = 400) -> list[dict]:
    """The schedule's runs, oldest first, once ``count`` of them have finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = call(app, token, "GET", f"schedules/{schedule_id}/runs").json()
        if sum(r["state"] != "running" for r in runs) >= count:
            return list(reversed(runs))
        time.sleep(1)
    raise AssertionError(f"fewer than {count} runs finished in {timeout}s: {runs}")


def video_titles(app, token, collection_id) -> list[str]:
    return sorted(v["title"] for v in call(app, token, "GET", f"collections/{collection_id}/videos").json())


def test_bad_cron_or_time_zone_and_viewers_are_refused(service, tokens):
    cid = course(service, "Refusals")
    body = {"sources": ["https://example.edu/feed.xml"], "cron": "0 3 * * *", "timezone": "Europe/Berlin"}
    for bad in ({"cron": "every night"}, {"cron": "61 * * * *"}, {"timezone": "Mars/Olympus"}):
        reply = call(service, tokens["alice"], "POST", f"collections/{cid}/schedules", json={**body, **bad})
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"] == "invalid_schedule"
    local = call(
        service, tokens["alice"], "POST", f"collections/{cid}/schedules", json={**body, "sources": ["/etc"]}
    )
    assert local.status_code == 403
    assert (
        call(service, tokens["carol"], "POST", f"collections/{cid}/schedules", json=body).status_code == 403
    )
    made = call(service, tokens["bob"], "POST", f"collections/{cid}/schedules", json=body)
    assert made.status_code == 201, made.text
    made = made.json()
    assert made["owner"] == "bob" and made["next_run_at"] and "+01:00" in made["next_run_at"]
    assert call(service, tokens["carol"], "GET", f"schedules/{made['id']}").status_code == 403
    assert [s["id"] for s in call(service, tokens["alice"], "GET", "schedules").json()] == [made["id"]]
    assert call(service, tokens["carol"], "GET", "schedules").json() == []
    bad_patch = call(service, tokens["alice"], "PATCH", f"schedules/{made['id']}", json={"cron": "* *"})
    assert bad_patch.status_code == 422


def test_a_short_interval_schedule_fires_with_its_notebook_and_history(service, tokens, pages):
    from datetime import UTC, datetime

    cid = course(service, "Nightly")
    # once a minute, first a few seconds from now (a seconds field first): one run, then pause
    second = (datetime.now(UTC).second + 4) % 60
    body = {"sources": [pages.url("a.html")], "cron": f"{second} * * * * *", "captions": "only"}
    schedule = call(service, tokens["alice"], "POST", f"collections/{cid}/schedules", json=body).json()
    try:
        [first] = wait_runs(service, tokens["alice"], schedule["id"], 1)[:1]
    finally:
        paused = call(service, tokens["alice"], "PATCH", f"schedules/{schedule['id']}", json={"paused": True})
        assert paused.json()["paused"] is True and paused.json()["next_run_at"] is None
    assert first["trigger"] == "cron" and first["state"] == "done", first
    assert (first["added"], first["skipped"], first["failed"]) == (1, 0, 0)
    assert first["summary"]["added"][0]["chunks"] > 0 and first["finished_at"] > first["started_at"]
    assert video_titles(service, tokens["alice"], cid) == ["Lecture A lecture"]
    # the executed notebook is the run's log, as a download and as a page
    nb = call(service, tokens["bob"], "GET", f"schedules/{schedule['id']}/runs/{first['id']}/notebook")
    assert nb.status_code == 200 and "attachment" in nb.headers["content-disposition"]
    cells = json.loads(nb.text)["cells"]
    injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    assert f'collection = "{cid}"' in "".join(injected["source"])
    assert "vrun." not in nb.text  # the run token is never written into the log
    page = call(
        service,
        tokens["alice"],
        "GET",
        f"schedules/{schedule['id']}/runs/{first['id']}/notebook",
        params={"format": "html"},
    )
    assert page.headers["content-type"].startswith("text/html") and "Lecture A" in page.text
    assert (
        call(service, tokens["carol"], "GET", f"schedules/{schedule['id']}/runs/{first['id']}").status_code
        == 403
    )


def test_a_failed_video_is_recorded_a_rerun_skips_what_the_collection_has_and_picks_up(
    service, tokens, pages
):
    cid = course(service, "Weekly")
    body = {
        "sources": [pages.url("b.html"), pages.url("c.html")],  # c is not published yet
        "cron": "0 3 * * *",
        "timezone": "America/New_York",
        "captions": "only",
        "paused": True,
    }
    schedule = call(service, tokens["bob"], "POST", f"collections/{cid}/schedules", json=body).json()
    sid = schedule["id"]
    started = call(service, tokens["alice"], "POST", f"schedules/{sid}/run")
    assert started.status_code == 202 and started.json()["state"] == "running"
    # while it runs, neither a second run-now nor another service process gets a run
    again = call(service, tokens["bob"], "POST", f"schedules/{sid}/run")
    assert again.status_code == 409, again.text
    other_process = Scheduler(service.state.service)
    assert other_process.acquire(sid, "cron") is None
    [first] = wait_runs(service, tokens["bob"], sid, 1)
    assert first["trigger"] == "manual" and first["state"] == "done", first
    assert (first["added"], first["failed"]) == (1, 1)
    [failure] = first["summary"]["failed"]
    assert failure["source"].endswith("c.html") and failure["stage"] and failure["reason"]

    pages.publish("c")
    assert call(service, tokens["bob"], "POST", f"schedules/{sid}/run").status_code == 202
    second = wait_runs(service, tokens["bob"], sid, 2)[1]
    assert second["state"] == "done" and (second["added"], second["skipped"], second["failed"]) == (1, 1, 0)
    assert second["summary"]["skipped"][0]["reason"] == "already in the collection"
    runs = wait_runs(service, tokens["bob"], sid, 2)
    assert runs[0]["finished_at"] <= runs[1]["started_at"]  # one after the other, never overlapping
    assert video_titles(service, tokens["bob"], cid) == ["Lecture B lecture", "Lecture C lecture"]

    # a run that stops inside the notebook records the cell and the error: here bob, its
    # owner, is no longer an editor, so the service refuses the run's requests
    from vidrag_hub import sharing

    from vidrag_kernel.catalog import Collection

    with service.state.service.catalog.session() as s:
        sharing.revoke(s, s.get(Collection, cid), "user", "bob")
    assert call(service, tokens["alice"], "POST", f"schedules/{sid}/run").status_code == 202
    third = wait_runs(service, tokens["alice"], sid, 3)[2]
    assert third["state"] == "failed" and third["error"].startswith("cell "), third
    assert "collection" in third["error"].lower() and third["has_notebook"]


def test_a_run_over_quota_stops_with_what_fitted_and_says_why(service, tokens, pages):
    from vidrag_hub.plans import set_plan

    cid = course(service, "Over quota", owner="bob")  # the collection's owner is charged
    with service.state.service.catalog.session() as s:
        set_plan(s, "bob", "one", source="admin", actor="tests", book=service.state.service.quotas.book)
    for name in ("d", "e"):
        pages.publish(name)
    body = {"sources": [pages.url("d.html"), pages.url("e.html")], "cron": "0 3 * * *", "paused": True}
    body["captions"] = "only"
    schedule = call(service, tokens["alice"], "POST", f"collections/{cid}/schedules", json=body).json()
    assert call(service, tokens["alice"], "POST", f"schedules/{schedule['id']}/run").status_code == 202
    [run] = wait_runs(service, tokens["alice"], schedule["id"], 1)
    assert run["state"] == "stopped" and run["added"] == 1, run
    assert run["error"] and run["error"] == run["summary"]["stopped"]
    assert "used 1 of 1 videos" in run["error"]  # the service's own words: who, how much, what to do
    assert len(video_titles(service, tokens["alice"], cid)) == 1


def test_a_run_token_reaches_its_one_collection_only(service, tokens):
    cid, other = course(service, "Scoped"), course(service, "Elsewhere")
    mint = service.state.service.identity.run_tokens.mint
    token = mint("alice", cid, ttl=60)
    assert [c["id"] for c in call(service, token, "GET", "collections").json()] == [cid]
    assert call(service, token, "GET", f"collections/{other}").status_code == 404
    assert call(service, token, "POST", "collections", json={"name": "Not by a run"}).status_code == 403
    assert call(service, mint("alice", cid, ttl=-1), "GET", "collections").status_code == 401
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert call(service, forged, "GET", "collections").status_code == 401


def test_schedules_survive_a_scheduler_restart(service, tokens):
    cid = course(service, "Restart")
    body = {"sources": ["https://example.edu/feed.xml"], "cron": "30 2 * * 1-5", "timezone": "Asia/Tokyo"}
    active = call(service, tokens["alice"], "POST", f"collections/{cid}/schedules", json=body).json()
    paused = call(
        service, tokens["alice"], "POST", f"collections/{cid}/schedules", json={**body, "paused": True}
    ).json()
    catalog = service.state.service.catalog
    # a run left "running" by a process that died an hour ago
    with catalog.session() as s:
        dead = ScheduleRun(
            schedule_id=paused["id"],
            trigger="cron",
            started_at=utcnow() - timedelta(hours=1),
            heartbeat_at=utcnow() - timedelta(hours=1),
        )
        s.add(dead)
        s.flush()
        s.get(Schedule, paused["id"]).running_run_id = dead.id
        dead_id = dead.id
    old = service.state.scheduler
    old.stop()
    fresh = Scheduler(
        service.state.service, runner=old.runner.__class__(service.state.service, notebook=NOTEBOOK)
    )
    fresh.start()
    service.state.scheduler = fresh
    assert fresh.next_run(active["id"]) is not None
    assert fresh.next_run(paused["id"]) is None
    shown = call(service, tokens["alice"], "GET", f"schedules/{active['id']}").json()
    assert shown["next_run_at"].endswith("+09:00") and "T02:30:00" in shown["next_run_at"]
    with catalog.session() as s:
        assert s.get(ScheduleRun, dead_id).state == "failed"
        assert s.get(Schedule, paused["id"]).running_run_id is None
    resumed = call(service, tokens["alice"], "PATCH", f"schedules/{paused['id']}", json={"paused": False})
    assert resumed.json()["next_run_at"] is not None
    assert call(service, tokens["alice"], "DELETE", f"schedules/{paused['id']}").status_code == 200
    assert fresh.next_run(paused["id"]) is None
    assert call(service, tokens["alice"], "GET", f"schedules/{paused['id']}").status_code == 404


def test_a_firing_missed_while_the_service_was_down_runs_once_when_it_is_back(service, tokens, pages):
    from datetime import UTC, datetime

    def restart() -> Scheduler:
        service.state.scheduler.stop()
        fresh = Scheduler(
            service.state.service,
            runner=BatchRunner(service.state.service, notebook=NOTEBOOK),
            grace=timedelta(hours=6),
        )
        fresh.start()
        service.state.scheduler = fresh
        return fresh

    def runs(schedule_id: str) -> list[dict]:
        return call(service, tokens["alice"], "GET", f"schedules/{schedule_id}/runs").json()

    service.state.scheduler.stop()  # the service goes down
    cid = course(service, "Missed while down")
    now = datetime.now(UTC)
    hourly, daily = now - timedelta(minutes=10), now - timedelta(hours=8)
    with service.state.service.catalog.session() as s:
        made = now - timedelta(hours=3)
        # hourly, made 3 hours ago: it missed three firings, the last 10 minutes ago
        missed = Schedule(
            collection_id=cid, owner="alice", sources=[pages.url("a.html")], cron=f"{hourly.minute} * * * *",
            timezone="UTC", captions="only", created_at=made, updated_at=made,
        )  # fmt: skip
        # daily, last due 8 hours ago: outside the 6 hours' grace, it waits for tomorrow
        stale = Schedule(
            collection_id=cid, owner="alice", sources=[pages.url("a.html")],
            cron=f"{daily.minute} {daily.hour} * * *", timezone="UTC", captions="only",
            created_at=now - timedelta(days=2), updated_at=now - timedelta(days=2),
        )  # fmt: skip
        s.add_all([missed, stale])
        s.flush()
        missed_id, stale_id = missed.id, stale.id
    restart()  # a real restart: a new scheduler on the same database
    [run] = wait_runs(service, tokens["alice"], missed_id, 1)
    assert run["trigger"] == "catch-up" and run["state"] == "done", run
    assert run["added"] == 1 and video_titles(service, tokens["alice"], cid) == ["Lecture A lecture"]
    time.sleep(2)  # once, not once per missed firing
    assert len(runs(missed_id)) == 1 and runs(stale_id) == []
    # back again: that firing is covered by the run, so nothing runs a second time
    again = restart()
    assert again.next_run(missed_id) is not None
    time.sleep(3)
    assert len(runs(missed_id)) == 1 and runs(stale_id) == []
    for schedule_id in (missed_id, stale_id):
        call(service, tokens["alice"], "DELETE", f"schedules/{schedule_id}")


def test_the_billing_reconcile_runs_on_the_schedulers_timer(tmp_path):
    """With billing on, the scheduler reconciles on its timer: a paid checkout whose
    webhook never arrived becomes Pro without anyone running ``vidrag-hub billing``."""
    from vidrag_hub.app import Service
    from vidrag_hub.billing_routes import provider_from_env
    from vidrag_hub.plans import plan_of
    from vidrag_hub.scheduler import RECONCILE_JOB
    from vidrag_hub.settings import ServiceSettings

    from tests.support.fake_stripe import FakeStripe
    from vidrag_kernel.errors import InvalidInput

    assert Scheduler(None, runner=object(), environ={}).reconcile_every == timedelta(hours=6)
    quiet = Scheduler(None, runner=object(), environ={"VIDRAG_BILLING_RECONCILE_HOURS": "0"})
    assert quiet.reconcile_every == timedelta(0)
    with pytest.raises(InvalidInput, match="VIDRAG_BILLING_RECONCILE_HOURS"):
        Scheduler(None, runner=object(), environ={"VIDRAG_BILLING_RECONCILE_HOURS": "often"})

    with FakeStripe() as fake:
        price = fake.add_price(2900, name="Pro")
        service = Service(ServiceSettings(shared_root=tmp_path / "root"))

        def plan() -> str:
            with service.catalog.session() as s:
                return plan_of(s, "zoe", service.quotas.book)

        try:
            # billing off: no timer
            off = Scheduler(service, reconcile_every=timedelta(seconds=1))
            off.start()
            assert off._aps.get_job(RECONCILE_JOB) is None
            off.stop()
            service.billing = provider_from_env(service, fake.env(pro=price["id"]))
            session = service.billing.checkout("zoe", "pro", "http://127.0.0.1:1/usage")
            fake.pay(session["id"], deliver=False)  # paid; the webhook never came
            assert plan() == "free"
            scheduler = Scheduler(service, reconcile_every=timedelta(seconds=1))
            scheduler.start()
            try:
                deadline = time.monotonic() + 30
                while plan() != "pro":
                    assert time.monotonic() < deadline, "the reconcile did not run on its timer"
                    time.sleep(0.2)
            finally:
                scheduler.stop()
        finally:
            service.catalog.close()


def test_where_a_notebook_stopped_names_the_cell_and_the_error(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    failing = nbformat.v4.new_code_cell("wb.ingest(sources)")
    failing.outputs = [
        nbformat.v4.new_output("error", ename="QuotaExceeded", evalue="Over your limit", traceback=[])
    ]
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), failing]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    assert where_it_stopped(path) == "cell 2 (wb.ingest(sources)): QuotaExceeded: Over your limit"


def test_the_schedules_card_makes_pauses_and_shows_history_with_logs(service, tokens, tmp_path):
    from vidrag_dashboards.schedules_card import SchedulesCard
    from vidrag_dashboards.state import AppState

    from tests.support.schedules import seed_schedule
    from tests.support.settings import make_settings
    from vidrag_kernel import Workbench
    from vidrag_kernel.shared import ServiceLibrary

    cid = course(service, "Dashboard course")
    _sid, run_id = seed_schedule(service.state.service, cid, "bob")
    shared = ServiceLibrary(f"{service.served.url}{API}/", tokens["bob"])
    wb = Workbench(make_settings(tmp_path / "bob", user="bob"), libraries=[shared])
    try:
        state = AppState(wb)
        card = SchedulesCard(state)
        state.collection = cid
        assert card.applies and len(card.schedules.value) == 1
        card.sources.value = "https://example.edu/course/feed.xml\n\nhttps://example.edu/extra.mp4"
        card.cron.value = "15 6 * * 2"
        card.timezone.value = "Europe/Paris"
        card.create_button.clicks += 1
        table = card.schedules.value
        assert len(table) == 2 and set(table["time zone"]) == {"UTC", "Europe/Paris"}
        made = table[table["time zone"] == "Europe/Paris"].iloc[0]
        assert made["state"] == "active" and made["next run"] != "-"
        card.schedules.selection = [int(table.index[table["id"] == made["id"]][0])]
        card.pause_button.clicks += 1
        assert shared.schedules.get(made["id"]).paused
        # a bad cron expression is a message on the page, not a traceback
        card.sources.value, card.cron.value = "https://example.edu/x", "every day"
        card.create_button.clicks += 1
        assert "cron" in card.notices.status.object.lower() and len(card.schedules.value) == 2
        # the seeded schedule's history, and its run's log as a page
        seeded = card.schedules.value
        card.schedules.selection = [int(seeded.index[seeded["id"] == _sid][0])]
        assert list(card.runs.value["id"]) == [run_id]
        card.runs.selection = [0]
        assert not card.log_page.disabled
        assert b"<html" in card._log_html().getvalue().lower()
        assert '"cells"' in card._log_ipynb().getvalue().decode()
        # a viewer sees no Schedules card
        viewer = Workbench(
            make_settings(tmp_path / "carol", user="carol"),
            libraries=[ServiceLibrary(f"{service.served.url}{API}/", tokens["carol"])],
        )
        viewer_state = AppState(viewer)
        viewer_card = SchedulesCard(viewer_state)
        viewer_state.collection = cid
        assert not viewer_card.applies
    finally:
        wb.close()


def test_the_vidrag_schedules_command(service, hub, tokens, tmp_path):
    from tests.support.cli import vidrag
    from tests.support.schedules import seed_schedule

    cid = course(service, "Command line course")
    _sid, run_id = seed_schedule(service.state.service, cid, "bob")
    env = {
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": tokens["bob"],
        "JUPYTERHUB_USER": "bob",
        "VIDRAG_SERVICE_URL": service.served.url,
        "VIDRAG_SERVICE_NAME": "vidrag",
    }

    def run(*args: str):
        return vidrag(tmp_path / "bob", *args, user="bob", env=env)

    def ok(*args: str):
        done = run(*args)
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if "--json" in args else done.stdout

    made = ok(
        "schedules", "create", cid, "--source", "https://example.edu/feed.xml", "--cron", "0 6 * * 1",
        "--timezone", "Europe/London", "--json",
    )  # fmt: skip
    assert made["cron"] == "0 6 * * 1" and made["owner"] == "bob" and not made["paused"]
    assert {s["id"] for s in ok("schedules", "list", cid, "--json")} == {made["id"], _sid}
    assert "Europe/London" in ok("schedules", "list")
    assert ok("schedules", "pause", made["id"], "--json")["paused"] is True
    assert ok("schedules", "resume", made["id"], "--json")["paused"] is False
    bad = run("schedules", "create", cid, "--source", "https://example.edu/x", "--cron", "nightly")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "cron" in bad.stderr
    runs = ok("schedules", "runs", _sid, "--json")
    assert [r["id"] for r in runs] == [run_id] and runs[0]["state"] == "done"
    assert run_id in ok("schedules", "runs", _sid)
    log = tmp_path / "log.html"
    ok("schedules", "log", _sid, run_id, "--format", "html", "-o", str(log))
    assert "<html" in log.read_text().lower()
    assert json.loads(ok("schedules", "log", _sid, run_id))["cells"]
    ok("schedules", "delete", made["id"])
    assert [s["id"] for s in ok("schedules", "list", cid, "--json")] == [_sid]
    # carol, a viewer, is refused with one line
    env["JUPYTERHUB_API_TOKEN"] = tokens["carol"]
    refused = run("schedules", "run-now", _sid)
    assert refused.returncode == 3 and refused.stderr.startswith("vidrag: error: ")


def test_a_bad_schedule_setting_stops_the_service_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.support.hub import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "VIDRAG_"))}
    env.update(
        JUPYTERHUB_API_TOKEN="not-a-real-token",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        VIDRAG_SHARED_ROOT=str(tmp_path / "shared"),
        VIDRAG_SCHEDULE_GRACE_HOURS="six",
    )
    done = subprocess.run(
        [sys.executable, "-m", "vidrag_hub"], env=env, capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert lines == ["vidrag-hub: VIDRAG_SCHEDULE_GRACE_HOURS='six' is not a number of hours (0 or more)"]
    assert not (tmp_path / "shared").exists()  # stopped before it opened anything
