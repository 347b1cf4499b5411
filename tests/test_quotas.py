"""Plans and the usage ledger on real SQLite and PostgreSQL: concurrent reservations never
overshoot a limit and grant exactly the limit; reserve/commit/release sequences keep the
ledger's books (hypothesis); ingests are charged to the collection owner and stopped at
the limit when a video is longer than reserved; the 429 through the real app against a
real hub names the limit, the usage, the reset time and the upgrade path, and nothing
stored is hidden when a user is over a limit.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from vidrag_hub import ledger, plans
from vidrag_hub.app import Service
from vidrag_hub.auth import HubUser
from vidrag_hub.ledger import Ask, OverLimit
from vidrag_hub.settings import ServiceSettings

from tests.support.settings import make_settings
from vidrag_kernel.catalog import IngestJob, Video
from vidrag_kernel.errors import InvalidInput, QuotaExceeded
from vidrag_kernel.records import MediaInfo, Transcript
from vidrag_kernel.stages import Prepared

VIDEO_LIMIT = 37
MESSAGE_LIMIT = 73


def make_service(root, url: str | None = None, **config) -> Service:
    settings = ServiceSettings(
        shared_root=root, database_url=url or "", kernel=make_settings(root), plans=config or {}
    )
    service = Service(settings)
    service.quotas.catalog  # noqa: B018 - opened (and migrated) once, before any thread races to it
    return service


@pytest.fixture
def service(catalog_url, tmp_path):
    plan = {"videos": VIDEO_LIMIT, "minutes": 100_000, "messages": MESSAGE_LIMIT, "storage_gb": 10}
    service = make_service(tmp_path / "shared", catalog_url, plans={"free": plan})
    yield service
    service.catalog.close()


def course(service: Service, owner: str) -> str:
    return service.library(HubUser(owner)).collections.create(f"Course {uuid.uuid4().hex[:6]}").id


def queue(service: Service, collection_id: str, user: str, duration: float | None, key: str | None = None):
    """What IngestWorkers.submit does: a job row and its reservation in one transaction."""
    key = key or uuid.uuid4().hex
    info = MediaInfo(source_key=f"test:{key}", url=f"https://example.edu/{key}", title=key, duration=duration)
    video_id, _ready = service.library(HubUser(user, admin=True)).ingestor.video_row(info)
    with service.catalog.session() as s:
        job = IngestJob(owner=user, collection_id=collection_id, video_id=video_id, source=info.url,
                        state="queued", timings={})  # fmt: skip
        s.add(job)
        s.flush()
        service.quotas.reserve_jobs(s, collection_id, user, [(job.id, info)])
        return job.id


def figures(service: Service, account: str, metric: str) -> tuple[int, int]:
    with service.catalog.session() as s:
        row = ledger.counter(s, account, metric)
        return (row.used, row.reserved) if row is not None else (0, 0)


def race(n: int, work) -> list:
    """``work(i)`` from ``n`` threads released together: each result, or the exception."""
    start = threading.Barrier(min(n, 50))

    def one(i):
        try:
            if i < 50:
                start.wait(timeout=60)
            return work(i)
        except Exception as exc:  # noqa: BLE001 - the refusals are the point
            return exc

    with ThreadPoolExecutor(max_workers=50) as pool:
        return list(pool.map(one, range(n)))


# ------------------------------------------------------------------------ concurrency
@pytest.mark.slow
def test_100_concurrent_ingest_reservations_grant_exactly_the_limit(service):
    cid = course(service, "olga")
    results = race(100, lambda i: queue(service, cid, "olga" if i % 2 else "editor-pat", 30))
    granted = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(granted) == VIDEO_LIMIT and len(refused) == 100 - VIDEO_LIMIT, [
        r for r in results if not isinstance(r, str | QuotaExceeded)
    ]
    # charged to the collection's owner, whoever queued; a refusal queued nothing
    assert figures(service, "user:olga", "videos") == (0, VIDEO_LIMIT)
    assert figures(service, "user:olga", "minutes") == (0, 30 * VIDEO_LIMIT)
    assert figures(service, "user:editor-pat", "videos") == (0, 0)
    with service.catalog.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(IngestJob).where(IngestJob.collection_id == cid))
            == VIDEO_LIMIT
        )
    refusal = refused[0].to_dict()
    assert refusal["metric"] == "videos" and refusal["limit"] == VIDEO_LIMIT and refusal["status"] == 429
    assert refusal["used"] + refusal["reserved"] == VIDEO_LIMIT
    assert "olga" in refusal["message"] or refusal["message"].startswith("You have")

    # the jobs end: done ones commit their real figures, failed ones give theirs back
    with service.catalog.session() as s:
        jobs = s.scalars(select(IngestJob).where(IngestJob.collection_id == cid).order_by(IngestJob.id)).all()
        for i, job in enumerate(jobs):
            job.state = "done" if i < 10 else "failed"
            if i < 10:
                s.get(Video, job.video_id).duration = 20.2
        ids = [j.id for j in jobs]
    for job_id in ids:
        service.quotas.settle(job_id)
        service.quotas.settle(job_id)  # reported twice (callback and sweep): settled once
    assert figures(service, "user:olga", "videos") == (10, 0)
    assert figures(service, "user:olga", "minutes") == (10 * 21, 0)


@pytest.mark.slow
def test_200_concurrent_messages_grant_exactly_the_limit(service):
    asker = HubUser("mia")

    def ask(_i):
        with service.quotas.message(asker, "answer:test"):
            return "answered"

    results = race(200, ask)
    assert results.count("answered") == MESSAGE_LIMIT
    assert all(isinstance(r, QuotaExceeded) for r in results if r != "answered")
    assert figures(service, "user:mia", "messages") == (MESSAGE_LIMIT, 0)
    refusal = next(r for r in results if r != "answered").to_dict()
    assert refusal["used"] + refusal["reserved"] >= MESSAGE_LIMIT - 49  # others were still in flight
    assert refusal["resets_at"] == plans.period_bounds(None)[1].isoformat()
    with service.catalog.session() as s:
        kinds = [e["kind"] for e in ledger.history(s, "mia", 1000)]
    assert kinds.count("commit") == MESSAGE_LIMIT and kinds.count("reserve") == MESSAGE_LIMIT


# ------------------------------------------------------------------ the ledger's books
@pytest.fixture(scope="module")
def books(tmp_path_factory):
    service = make_service(tmp_path_factory.mktemp("books"))
    yield service
    service.catalog.close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 40)),
        st.tuples(st.just("commit"), st.integers(0, 30), st.integers(0, 40)),
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("extend"), st.integers(0, 30), st.integers(0, 20)),
        st.tuples(st.just("expire"), st.integers(0, 30)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(0, 100), steps=operations)
def test_reserve_commit_release_keep_the_books(books, limit, steps):
    account = f"user:prop-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    open_: dict[str, int] = {}
    used = 0
    for step in steps:
        with books.catalog.session() as s:
            if step[0] == "reserve":
                n = step[1]
                try:
                    (rid,) = ledger.reserve(
                        s, account, "prop", [Ask("videos", n, limit)], ttl=timedelta(hours=1), now=now
                    )
                    assert used + sum(open_.values()) + n <= limit
                    open_[rid] = n
                except OverLimit:
                    assert used + sum(open_.values()) + n > limit
            elif open_:
                rid = sorted(open_)[step[1] % len(open_)]
                if step[0] == "commit":
                    real = min(step[2], open_[rid])  # a bigger real figure is admitted first (extend)
                    assert ledger.commit(s, rid, real)
                    used += real
                    del open_[rid]
                elif step[0] == "release":
                    assert ledger.release(s, rid)
                    del open_[rid]
                elif step[0] == "extend":
                    fits = used + sum(open_.values()) + step[2] <= limit
                    assert ledger.extend(s, rid, step[2], limit) == fits
                    if fits:
                        open_[rid] += step[2]
                else:  # its holder died: the sweep after expiry releases it
                    s.get(ledger.Reservation, rid).expires_at = now - timedelta(seconds=1)
                    s.flush()
                    assert ledger.sweep(s, account=account, now=now) == 1
                    del open_[rid]
        row_used, row_reserved = figures(books, account, "videos")
        assert (row_used, row_reserved) == (used, sum(open_.values()))
        assert row_used + row_reserved <= limit
    # settling twice changes nothing
    with books.catalog.session() as s:
        for rid in list(open_):
            assert ledger.release(s, rid) and not ledger.release(s, rid) and not ledger.commit(s, rid)
    assert figures(books, account, "videos") == (used, 0)


def test_messages_reset_each_month_or_on_the_subscription_anniversary(books):
    account = f"user:reset-{uuid.uuid4().hex}"
    december = datetime(2026, 12, 15, tzinfo=UTC)
    start = plans.period_bounds(None, december)[0]
    with books.catalog.session() as s:
        for _ in range(3):
            (rid,) = ledger.reserve(
                s, account, "r", [Ask("messages", 1, 3)], ttl=timedelta(minutes=5), period=start
            )
            ledger.commit(s, rid, period=start)
        with pytest.raises(OverLimit):
            ledger.reserve(s, account, "r", [Ask("messages", 1, 3)], ttl=timedelta(minutes=5), period=start)
    january = plans.period_bounds(None, datetime(2027, 1, 2, tzinfo=UTC))[0]
    assert january == datetime(2027, 1, 1, tzinfo=UTC)
    with books.catalog.session() as s:  # the new period's first reservation resets used, atomically
        ledger.reserve(s, account, "r", [Ask("messages", 1, 3)], ttl=timedelta(minutes=5), period=january)
    assert figures(books, account, "messages") == (0, 1)
    # a subscription started on the 31st renews on the last day of shorter months
    anchor = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert plans.period_bounds(anchor, datetime(2026, 3, 1, tzinfo=UTC)) == (
        datetime(2026, 2, 28, 9, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 9, 30, tzinfo=UTC),
    )
    assert plans.period_bounds(anchor, datetime(2026, 1, 31, 9, 29, tzinfo=UTC))[1] == anchor


# -------------------------------------------------------------------------- plans
def test_plan_precedence_enterprise_pools_and_the_audit_trail(tmp_path):
    service = make_service(
        tmp_path, enterprise={"acme": {"videos": 1000, "minutes": 100000, "messages": 2, "storage_gb": 500}}
    )
    quotas = service.quotas
    with quotas.catalog.session() as s:
        assert quotas.standing(s, HubUser("ann")).plan.name == "free"
        plans.set_plan(
            s, "ann", "pro", source="stripe", actor="stripe", period_start=datetime(2026, 11, 20, tzinfo=UTC)
        )
        assert plans.plan_of(s, "ann") == "pro"  # the service's book, found from the session
        # an organisation pays: its pool wins over a personal subscription
        assert quotas.standing(s, HubUser("ann", groups=frozenset({"acme", "cs101"}))).account == "group:acme"
        plans.set_plan(s, "ann", "free", source="admin", actor="ada", note="by hand")
        assert quotas.standing(s, "ann").plan.name == "free"  # a hand-set plan wins over both
        plans.set_plan(s, "ann", "free", source="default", actor="ada")
        assert quotas.standing(s, "ann").plan.name == "enterprise:acme"
        quotas.standing(s, HubUser("ben", groups=frozenset({"acme"})))
        trail = plans.changes(s, "ann")
    assert [(c["source"], c["new_plan"]) for c in reversed(trail)] == [
        ("stripe", "pro"),
        ("admin", "free"),
        ("default", "enterprise:acme"),
    ]
    assert trail[1]["actor"] == "ada" and trail[1]["note"] == "by hand"
    # both members draw on one pool
    quotas.settle_message(quotas.reserve_message(HubUser("ann", groups=frozenset({"acme"}))), True)
    quotas.settle_message(quotas.reserve_message(HubUser("ben", groups=frozenset({"acme"}))), True)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.reserve_message(HubUser("ann", groups=frozenset({"acme"})))
    assert "organisation (acme)" in refused.value.message
    with pytest.raises(InvalidInput, match="No plan named"), quotas.catalog.session() as s:
        plans.set_plan(s, "ann", "platinum", source="admin", actor="ada")


# ------------------------------------------------------------------------- ingests
def prepared(seconds: float) -> Prepared:
    info = MediaInfo(source_key="test:x", url="https://example.edu/x", title="x", duration=None)
    return Prepared(
        info, Transcript([], "en", seconds, "captions"), [], np.zeros((0, 384), "float32"), seconds, "media"
    )


def test_a_video_longer_than_its_reservation_is_stopped_at_the_limit(tmp_path):
    service = make_service(
        tmp_path, plans={"free": {"videos": 5, "minutes": 1, "messages": 5, "storage_gb": 1}}
    )
    cid = course(service, "olga")
    job = queue(service, cid, "olga", duration=None)  # no duration from the site: one minute held
    assert figures(service, "user:olga", "minutes") == (0, 60)
    with pytest.raises(QuotaExceeded, match="Stopped at the limit") as stopped:
        service.quotas.admit(job, prepared(95))
    assert stopped.value.metric == "minutes" and stopped.value.limit == 60
    with service.catalog.session() as s:
        s.get(IngestJob, job).state = "failed"
    service.quotas.settle(job)
    assert figures(service, "user:olga", "minutes") == (0, 0)
    assert figures(service, "user:olga", "videos") == (0, 0)

    # a video that fits after all: its real length is committed
    job = queue(service, cid, "olga", duration=30)
    service.quotas.admit(job, prepared(45.5))
    assert figures(service, "user:olga", "minutes") == (0, 46)
    with service.catalog.session() as s:
        row = s.get(IngestJob, job)
        row.state = "done"
        s.get(Video, row.video_id).duration = 45.5
    service.quotas.settle(job)
    assert figures(service, "user:olga", "minutes") == (46, 0)
    assert figures(service, "user:olga", "videos") == (1, 0)
    # the next one needs more than is left: refused before anything is queued
    with pytest.raises(QuotaExceeded, match="minutes of video") as refused:
        queue(service, cid, "olga", duration=20)
    assert refused.value.to_dict()["upgrade"] is None and "administrator" in refused.value.message


def test_reservations_of_dead_jobs_expire(tmp_path):
    service = make_service(
        tmp_path, plans={"free": {"videos": 1, "minutes": 10, "messages": 1, "storage_gb": 1}}
    )
    cid = course(service, "olga")
    job = queue(service, cid, "olga", duration=60)
    with pytest.raises(QuotaExceeded):
        queue(service, cid, "olga", duration=60)
    with service.catalog.session() as s:  # the job's process died long ago (still "running")
        s.get(IngestJob, job).state = "transcribing"
        for r in ledger.of_job(s, job):
            r.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    queue(service, cid, "olga", duration=60)  # the sweep before reserving released it
    with service.catalog.session() as s:
        assert [e["kind"] for e in ledger.history(s, "olga")][:4].count("reserve") == 3


# ------------------------------------------------------------------- configuration
def test_reservation_lifetimes_are_settings(monkeypatch, tmp_path):
    from vidrag_hub.quotas import holds

    default = make_service(tmp_path / "default").quotas
    # an answer's 10 minutes; an ingest's three times the longest video allowed (4 h)
    assert (default.answer_hold, default.ingest_hold) == (timedelta(minutes=10), timedelta(hours=12))
    assert holds(600, {})[1] == timedelta(hours=6)  # never less than 6 hours
    with pytest.raises(InvalidInput, match="^VIDRAG_INGEST_HOLD_SECONDS='soon'"):
        holds(600, {"VIDRAG_INGEST_HOLD_SECONDS": "soon"})
    with pytest.raises(InvalidInput, match="^VIDRAG_ANSWER_HOLD_SECONDS='0'"):
        holds(600, {"VIDRAG_ANSWER_HOLD_SECONDS": "0"})

    monkeypatch.setenv("VIDRAG_ANSWER_HOLD_SECONDS", "30")
    monkeypatch.setenv("VIDRAG_INGEST_HOLD_SECONDS", "7200")
    service = make_service(tmp_path / "set")
    cid = course(service, "olga")
    job = queue(service, cid, "olga", duration=60)
    rid = service.quotas.reserve_message(HubUser("olga"))
    now = datetime.now(UTC)
    with service.catalog.session() as s:
        message = s.get(ledger.Reservation, rid)
        ingest = ledger.of_job(s, job)
        assert abs(plans._aware(message.expires_at) - (now + timedelta(seconds=30))) < timedelta(seconds=10)
        for r in ingest:
            assert abs(plans._aware(r.expires_at) - (now + timedelta(hours=2))) < timedelta(seconds=10)
    assert len(ingest) == 3
    service.catalog.close()
    default.catalog.close()


def test_plans_from_jupyterhub_config_reach_the_service(monkeypatch, tmp_path):
    from tests.test_hub_config import load_config

    acme = {"videos": 900, "minutes": 90000, "messages": None, "storage_gb": 800}
    c = load_config(
        monkeypatch,
        tmp_path,
        VIDRAG_DEMO_PASSWORD="long-enough-password",
        VIDRAG_SERVICE_ENABLED="true",
        VIDRAG_ENTERPRISE_PLANS=json.dumps({"acme": acme}),
        VIDRAG_PLAN_LIMITS=json.dumps({"pro": {"title": "Pro", "price": "$29 a month", "messages": 6000}}),
    )
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "vidrag"]
    config = json.loads(service["environment"]["VIDRAG_PLANS"])
    assert config["default_plan"] == "free" and config["enterprise"] == {"acme": acme}
    assert config["plans"]["free"] == plans.DEFAULT_PLANS["free"]
    settings = ServiceSettings.from_env({"VIDRAG_PLANS": service["environment"]["VIDRAG_PLANS"]})
    book = plans.PlanBook(settings.plans)
    assert book.get("enterprise:acme").messages is None and book.get("enterprise:acme").minutes == 90000 * 60
    assert book.get("pro").messages == 6000 and book.get("pro").videos is None  # replaced whole
    assert book.get("free").storage == plans.GB
    with pytest.raises(ValueError, match="VIDRAG_ENTERPRISE_PLANS"):
        load_config(monkeypatch, tmp_path, VIDRAG_DEMO_PASSWORD="long-enough-password",
                    VIDRAG_SERVICE_ENABLED="true", VIDRAG_ENTERPRISE_PLANS='{"acme": {"videos": -1}}')  # fmt: skip


# ------------------------------------------------------------ through the real service
@pytest.mark.hub
@pytest.mark.slow
def test_the_429_through_the_service_and_nothing_stored_is_hidden(tmp_path, media_server):
    from fastapi.testclient import TestClient
    from vidrag_hub import sharing
    from vidrag_hub.app import make_app

    from tests.support.service import ServiceHub
    from vidrag_kernel.catalog import Collection
    from vidrag_kernel.shared import ServiceClient

    hub = ServiceHub(tmp_path / "hub")
    hub.hub.start(timeout=240)  # a loaded 2-core machine starts a hub slowly
    try:
        for name in ("alice", "bob", "ada"):
            hub.user(name)
        tokens = {name: hub.token(name) for name in ("alice", "bob", "ada")}
        free = {"videos": 5, "minutes": 600, "messages": 2, "storage_gb": 1}
        app = make_app(hub.settings(tmp_path / "shared", plans={"plans": {"free": free}}))
        service = app.state.service
        lib = service.library(HubUser("alice"))
        cid = lib.collections.create("Algorithms").id
        done = lib.ingest(media_server.url("lecture.html"), cid, captions="only")
        assert done[0].status == "done", done[0].error
        with service.catalog.session() as s:
            sharing.grant(s, s.get(Collection, cid), "user", "bob", "viewer", "alice")

        with TestClient(app, raise_server_exceptions=False) as client:

            def call(who, method, path, **kwargs):
                headers = {"Authorization": f"token {tokens[who]}"}
                return client.request(method, f"/services/vidrag/api/{path}", headers=headers, **kwargs)

            question = {"question": "What is binary search?"}
            for _ in range(2):
                assert call("bob", "POST", f"collections/{cid}/ask", json=question).status_code == 200
            refused = call("bob", "POST", f"collections/{cid}/ask", json=question)
            assert refused.status_code == 429
            body = refused.json()
            assert set(body) == {"error", "status", "message", *QuotaExceeded.FIELDS}
            assert body["error"] == "quota_exceeded" and body["metric"] == "messages"
            assert (body["limit"], body["used"], body["reserved"]) == (2, 2, 0)
            resets = datetime.fromisoformat(body["resets_at"])
            assert resets == plans.period_bounds(None)[1] and body["upgrade"] is None  # billing is off
            sentence = body["message"]
            assert sentence.startswith("You have used 2 of 2 chat messages on the Free plan")
            assert (
                f"reset on {resets:%Y-%m-%d}" in sentence and ". " not in sentence
            )  # one sentence, the way out included
            assert "administrator" in sentence
            assert call("bob", "POST", f"collections/{cid}/ask/stream", json=question).status_code == 429

            # nothing stored is hidden: videos, transcripts, search and his conversations
            videos = call("bob", "GET", f"collections/{cid}/videos").json()
            assert [v["id"] for v in videos] == [done[0].video_id]
            transcript = call("bob", "GET", f"collections/{cid}/videos/{done[0].video_id}/transcript")
            assert transcript.status_code == 200 and "binary" in transcript.json()["text"].lower()
            assert call("bob", "POST", f"collections/{cid}/search", json={"query": "binary search"}).json()
            assert len(call("bob", "GET", "conversations").json()) == 2
            # messages count against the asker: the owner still asks
            assert call("alice", "POST", f"collections/{cid}/ask", json=question).status_code == 200

            usage = call("bob", "GET", "usage").json()
            assert usage["plan"]["name"] == "free" and usage["billing"] == {"enabled": False}
            assert usage["metrics"]["messages"] == {
                "used": 2, "reserved": 0, "limit": 2, "unit": "messages", "resets": True
            }  # fmt: skip
            assert usage["resets_at"] == body["resets_at"]
            alice = call("alice", "GET", "usage").json()
            assert alice["metrics"]["videos"]["used"] == 0  # a kernel-side ingest is not the service's

            # the kernel's client raises the same error, figures and sentence included
            client_api = ServiceClient("http://testserver/services/vidrag/api/", tokens["bob"], http=client)
            with pytest.raises(QuotaExceeded) as raised:
                client_api.call("POST", f"collections/{cid}/ask", json=question)
            assert raised.value.limit == 2 and raised.value.metric == "messages"
            assert raised.value.message == f"vidrag service: {sentence}"

            # an admin puts bob on Pro by hand (audited); only admins may
            assert call("bob", "PUT", "admin/plans/bob", json={"plan": "pro"}).status_code == 403
            assert call("bob", "GET", "admin/usage").status_code == 403
            moved = call("ada", "PUT", "admin/plans/bob", json={"plan": "pro", "note": "course TA"})
            assert moved.status_code == 200 and moved.json()["plan"]["name"] == "pro"
            assert call("ada", "PUT", "admin/plans/bob", json={"plan": "gold"}).status_code == 400
            assert call("bob", "POST", f"collections/{cid}/ask", json=question).status_code == 200
            history = call("bob", "GET", "usage/history").json()
            assert history["plan_changes"][0] | {"at": None} == {
                "user": "bob", "old_plan": "free", "new_plan": "pro", "source": "admin", "actor": "ada",
                "note": "course TA", "at": None,
            }  # fmt: skip
            assert [e["kind"] for e in history["events"]][:2] == ["commit", "reserve"]
            everyone = {row["user"]: row for row in call("ada", "GET", "admin/usage").json()}
            assert everyone["bob"]["metrics"]["messages"]["used"] == 3
            assert everyone["alice"]["metrics"]["messages"]["used"] == 1
    finally:
        assert hub.stop() == []


@pytest.mark.slow
def test_ingest_through_the_runner_is_charged_to_the_owner_and_refused_at_the_limit(tmp_path, media_root):
    """The real IngestWorkers (a Dask LocalCluster) with the service's quota point: a job
    reserves as it is queued and commits its real figures when done; the next one over the
    limit is refused and queues nothing."""
    import shutil
    import time

    from vidrag_hub.work import IngestWorkers

    from tests.support.media_server import MediaServer

    pages = tmp_path / "pages"
    pages.mkdir()
    html = (media_root / "lecture.html").read_text()
    for name in ("lecture", "second"):
        shutil.copy(media_root / "lecture.mp4", pages / f"{name}.mp4")
        shutil.copy(media_root / "lecture.vtt", pages / f"{name}.vtt")
        (pages / f"{name}.html").write_text(html.replace("lecture.", f"{name}."))
    server = MediaServer(pages)
    service = make_service(
        tmp_path / "shared", plans={"free": {"videos": 1, "minutes": 30, "messages": 1, "storage_gb": 1}}
    )
    runner = IngestWorkers(
        service.writer, service.kernel_settings, committer=service.writer, quota=service.quotas, n_workers=1
    )
    runner.start()
    try:
        cid = course(service, "olga")
        (job,) = runner.submit([server.url("lecture.html")], cid, user="olga", captions="only")
        assert figures(service, "user:olga", "videos") == (0, 1)
        deadline = time.monotonic() + 300
        while runner.status(job)["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.status(job)["state"] == "done", runner.status(job)
        with service.catalog.session() as s:
            seconds = s.get(Video, s.get(IngestJob, job).video_id).duration
        assert figures(service, "user:olga", "videos") == (1, 0)
        assert figures(service, "user:olga", "minutes") == (int(np.ceil(seconds)), 0)
        assert figures(service, "user:olga", "storage")[0] > 0
        with pytest.raises(QuotaExceeded, match="1 of 1 videos"):
            runner.submit([server.url("second.html")], cid, user="olga", captions="only")
        with service.catalog.session() as s:
            assert (
                s.scalar(select(func.count()).select_from(IngestJob).where(IngestJob.collection_id == cid))
                == 1
            )
        assert service.library(HubUser("olga")).videos.list(cid)  # what is stored stays listed
    finally:
        runner.close()
        server.stop()


def test_the_refusal_names_the_upgrade_path_when_there_is_one(tmp_path):
    service = make_service(
        tmp_path,
        plans={"free": {"videos": 1, "minutes": 5, "messages": 1, "storage_gb": 1},
               "pro": {"title": "Pro", "videos": 9, "minutes": 90, "messages": 1, "storage_gb": 9}},
        upgrade_url="https://example.edu/pricing",
    )  # fmt: skip
    quotas, ann = service.quotas, HubUser("ann")
    quotas.settle_message(quotas.reserve_message(ann), True)
    cid = course(service, "ann")
    queue(service, cid, "ann", duration=60)
    with pytest.raises(QuotaExceeded) as refused:
        queue(service, cid, "bob", duration=60)  # bob queues into ann's collection
    assert refused.value.message == (
        "The collection's owner, ann, has used 0 of 1 videos on the Free plan (1 more in progress); "
        "upgrade to Pro for more: https://example.edu/pricing."
    )
    assert refused.value.upgrade == "https://example.edu/pricing" and refused.value.resets_at is None
    # Pro has no more messages than Free here: no upgrade to offer, the administrator decides
    with pytest.raises(QuotaExceeded, match="ask the administrator of this hub for a bigger plan"):
        quotas.reserve_message(ann)


def test_removing_a_video_gives_its_quota_back_once(tmp_path):
    service = make_service(
        tmp_path, plans={"free": {"videos": 2, "minutes": 10, "messages": 1, "storage_gb": 1}}
    )
    cid = course(service, "olga")
    jobs = [queue(service, cid, "olga", duration=120) for _ in range(2)]
    with service.catalog.session() as s:
        videos = []
        for job_id in jobs:
            row = s.get(IngestJob, job_id)
            row.state = "done"
            s.get(Video, row.video_id).duration = 120
            videos.append(row.video_id)
    for job_id in jobs:
        service.quotas.settle(job_id)
    assert figures(service, "user:olga", "videos") == (2, 0)
    with pytest.raises(QuotaExceeded):
        queue(service, cid, "olga", duration=60)
    service.quotas.give_back(cid, videos[0])
    service.quotas.give_back(cid, videos[0])  # the same removal reported again: once
    assert figures(service, "user:olga", "videos") == (1, 0)
    assert figures(service, "user:olga", "minutes") == (120, 0)
    queue(service, cid, "olga", duration=60)  # room again
    service.quotas.give_back(cid)  # the whole collection goes
    assert figures(service, "user:olga", "videos") == (0, 1)
    assert figures(service, "user:olga", "minutes") == (0, 60)
