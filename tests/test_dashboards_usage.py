"""The Usage & billing tab against the real service, the real Stripe client and a fake Stripe.

Real JupyterHub (users, tokens), the real service app in-process (FastAPI's TestClient,
passed to ``ServiceLibrary`` as ``http=``), ``tests.support.fake_stripe`` behind the real
stripe-python ``StripeClient``, whose signed webhooks reach the app through the same
client; in the browser test also the service's real Dask ingest workers. The Free plan
here allows one chat message, so its limit is met at once.
"""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from vidrag_hub import plans
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser
from vidrag_hub.billing_routes import provider_from_env

from tests.support.fake_stripe import FakeStripe
from tests.support.service import ServiceHub
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.shared import ServiceLibrary

pytestmark = [pytest.mark.hub, pytest.mark.slow]

FREE = {"title": "Free", "price": "$0", "videos": 3, "minutes": 60, "messages": 1, "storage_gb": 1}
WEBHOOK = "/services/vidrag/stripe/webhook"


class _Up(BaseHTTPRequestHandler):
    """Answers 200 to anything: the hub's start-up check of its external service."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def service(tmp_path_factory, media_server):
    with FakeStripe() as fake:
        price = fake.add_price(2900, name="Pro")
        hub = ServiceHub(tmp_path_factory.mktemp("usage-hub"))
        # the app answers through TestClient; something must answer at the service's
        # address while the hub starts, or the hub waits for it (half a minute)
        stand_in = ThreadingHTTPServer(("127.0.0.1", hub.service_port), _Up)
        threading.Thread(target=stand_in.serve_forever, daemon=True).start()
        try:
            hub.start()
        finally:
            stand_in.shutdown()
            stand_in.server_close()
        for name in ("ada", "pat", "lee"):
            hub.user(name)
        hub.group("instructors", ["ada"])
        app = make_app(hub.settings(tmp_path_factory.mktemp("usage-root"), plans={"plans": {"free": FREE}}))
        svc = app.state.service
        svc.billing = provider_from_env(svc, fake.env(pro=price["id"]))
        with TestClient(app, raise_server_exceptions=False) as http:
            fake.webhook = lambda body, headers: http.post(WEBHOOK, content=body, headers=headers).status_code
            lib = svc.library(HubUser("ada", groups=frozenset({"instructors"})))
            course = lib.collections.create("Usage course", instructor="Ada")
            done = lib.ingest(media_server.url("lecture.html"), course.id, captions="only")
            assert done[0].status == "done", done[0].error
            from vidrag_hub import sharing

            from vidrag_kernel.catalog import Collection

            with svc.catalog.session() as s:
                sharing.grant(s, s.get(Collection, course.id), "user", "pat", "viewer", "ada")
            yield hub, http, app, fake
        assert hub.stop() == []


@pytest.fixture
def workbench(service, tmp_path):
    hub, http, _app, _fake = service

    def make(user: str) -> Workbench:
        shared = ServiceLibrary("http://testserver/services/vidrag/api/", hub.token(user), http=http)
        return Workbench(make_settings(tmp_path / user, user=user), libraries=[shared])

    return make


def plan_of(app, user: str) -> str:
    with app.state.service.catalog.session() as s:
        return plans.plan_of(s, user, app.state.service.quotas.book)


def test_the_card_shows_plan_bars_and_billing_off_plainly(service, workbench):
    from vidrag_dashboards.state import AppState
    from vidrag_dashboards.usage_card import UsageCard

    _hub, _http, app, _fake = service
    svc = app.state.service
    billing, svc.billing = svc.billing, None
    try:
        card = UsageCard(AppState(workbench("lee")))
        assert "Billing is off" in card.billing.object
        assert not card.upgrade_button.visible and not card.manage_button.visible
    finally:
        svc.billing = billing
    card.refresh()
    assert "<strong>Free</strong>" in card.plan.object
    assert "Chat messages this period: 0 used of 1" in card.meters.object
    assert card.upgrade_button.visible and not card.manage_button.visible
    assert not card.admin_table.visible  # lee is no admin

    assert UsageCard(AppState(workbench("ada"))).admin_table.visible  # a hub admin


def test_upgrade_from_the_card_pays_and_comes_back_to_pro(service, workbench):
    from vidrag_dashboards.state import AppState
    from vidrag_dashboards.usage_card import UsageCard

    _hub, _http, app, fake = service
    card = UsageCard(AppState(workbench("lee")))
    card.upgrade_button.clicks += 1  # what a browser's click sends
    assert "Continue to payment" in card.go.object and fake.url + "/checkout/" in card.go.object
    session_id = card.go.object.split("/checkout/")[1].split('"')[0]
    assert plan_of(app, "lee") == "free"
    fake.pay(session_id)
    card.refresh_button.clicks += 1
    assert plan_of(app, "lee") == "pro"
    assert "<strong>Pro</strong>" in card.plan.object and "of 5000" in card.meters.object
    assert not card.upgrade_button.visible and card.manage_button.visible
    card.manage_button.clicks += 1
    assert "Open billing" in card.go.object and fake.url + "/portal/" in card.go.object

    # the admin's table lists lee on Pro, with her limits
    table = UsageCard(AppState(workbench("ada"))).admin_table.value.set_index("user")
    assert table.loc["lee", "plan"] == "pro" and table.loc["lee", "messages"] == "0 / 5000"


def meters(page) -> dict[str, tuple[str, float]]:
    """The Usage tab's bars as the page shows them: metric -> (its sentence, the used bar's width in %)."""
    rows = page.locator(".vidrag-meter").evaluate_all(
        "els => els.map(e => [e.dataset.metric, e.querySelector('p').textContent,"
        " parseFloat(e.querySelector('.used').style.width)])"
    )
    return {metric: (text, width) for metric, text, width in rows}


@pytest.fixture
def lecture_copy(tmp_path, media_root):
    """The captioned test lecture again under another name on its own server: a video the
    service has not seen, so its ingest runs on a worker rather than linking a known one."""
    from tests.support.media_server import MediaServer

    html = (media_root / "lecture.html").read_text()
    shutil.copy(media_root / "lecture.mp4", tmp_path / "again.mp4")
    shutil.copy(media_root / "lecture.vtt", tmp_path / "again.vtt")
    (tmp_path / "again.html").write_text(html.replace("lecture.", "again."))
    server = MediaServer(tmp_path)
    yield server.url("again.html")
    server.stop()


@pytest.mark.browser
def test_a_free_user_meets_the_limit_upgrades_in_the_browser_and_sees_usage_move(
    service, workbench, browser, lecture_copy
):
    """pat asks until the Free plan's one message is used and reads the 429 sentence, opens
    Usage & billing (axe-clean), ingests a lecture into his own shared collection through the
    service (its Dask workers) and sees his videos, minutes and storage bars move, presses
    Upgrade, pays on the fake Stripe's page and comes back to the Pro limit (its messages
    counted from the subscription's start, his video still counted), and the message bar
    moves with the next question."""
    import panel as pn
    from vidrag_dashboards.app import CSS, EXTENSIONS, WorkbenchApp

    from tests.support.browser import Shots, check_accessibility, describe_violations, serve_panel
    from tests.support.hub import free_port

    hub, _http, app, _fake = service
    pat = workbench("pat")
    # the service's own ingest runner (one Dask worker process, as the service starts it),
    # started beside the page's first load
    runner = app.state.service.ingest_workers()
    starting = threading.Thread(target=runner.start, name="usage-test-ingest-start")
    starting.start()
    pn.extension(*EXTENSIONS, raw_css=[CSS])
    port = free_port()
    server = serve_panel(
        {"pat": lambda: WorkbenchApp(pat).template()},
        port,
    )

    def ask(page, question: str) -> None:
        box = page.get_by_placeholder("Ask a question and press Enter")
        box.fill(question)
        box.press("Enter")

    def usage_tab(page, *sentences: str) -> None:
        page.get_by_role("tab", name="Usage & billing").click()
        for sentence in sentences:
            page.get_by_text(sentence, exact=False).first.wait_for()

    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(30_000)
        shot = Shots(page, "usage")
        with shot.on_failure():
            page.goto(f"http://127.0.0.1:{port}/pat")
            # the first session builds every card on a busy machine: give it time once
            page.get_by_placeholder("Ask a question and press Enter").wait_for(timeout=120_000)
            ask(page, "What is binary search?")
            page.locator(".vidrag-citation button").first.wait_for(timeout=60_000)
            ask(page, "And what is a sorted list?")
            page.get_by_text("they reset on", exact=False).first.wait_for()
            shot("limit met")
            assert plan_of(app, "pat") == "free"

            page.goto(f"http://127.0.0.1:{port}/pat")
            page.get_by_role("tab", name="Usage & billing").wait_for(timeout=120_000)
            usage_tab(page, "on the Free plan", "Chat messages this period: 1 used of 1")
            shot("usage free")
            print(describe_violations(check_accessibility(page, "the Usage & billing tab")))

            # an ingest into pat's own shared collection, through the service's ingest API
            # and its workers, moves the bars of the collection owner: pat
            before = meters(page)
            assert before["videos"] == ("Videos: 0 used of 3", 0.0), before
            starting.join(timeout=300)
            app.state.runner = runner
            hub.group("instructors", ["pat"])  # a course creator now, so he may own one
            course = pat.collections.create("Pat's course", library="shared")
            [done] = pat.ingest(lecture_copy, course.id, captions="only")
            assert done.status == "done", done.error
            page.get_by_role("button", name="Refresh usage").click()
            page.get_by_text("Videos: 1 used of 3", exact=False).first.wait_for()
            after = meters(page)
            shot("usage after ingest")
            assert after["videos"] == ("Videos: 1 used of 3", pytest.approx(33.3, abs=0.1)), after
            for metric in ("minutes", "storage"):
                assert after[metric][0] != before[metric][0], (metric, before[metric], after[metric])
                assert after[metric][1] > before[metric][1] == 0.0, (metric, after[metric])
            page.get_by_role("button", name="Upgrade").click()
            page.get_by_role("link", name="Continue to payment").click()
            page.get_by_role("heading", name="Fake Stripe Checkout").wait_for()
            shot("checkout")
            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(f"http://127.0.0.1:{port}/pat?billing=success")
            assert plan_of(app, "pat") == "pro"
            # the subscription's period starts now: its messages count from zero
            usage_tab(
                page,
                "on the Pro plan",
                "Chat messages this period: 0 used of 5000",
                "renews on",
                "Videos: 1 used of 200",  # the video stays counted across the plan change
            )
            shot("usage pro")
            print(describe_violations(check_accessibility(page, "the Usage & billing tab on Pro")))

            # the next question is allowed now, and the message bar moves
            page.get_by_role("tab", name="Chat").click()
            ask(page, "What does binary search need?")
            page.locator(".vidrag-citation button").first.wait_for(
                timeout=60_000
            )  # a fresh page: its first answer
            page.get_by_role("tab", name="Usage & billing").click()
            page.get_by_role("button", name="Refresh usage").click()
            page.get_by_text("Chat messages this period: 1 used of 5000", exact=False).first.wait_for()
            shot("usage moved")
        assert not errors, errors
        page.close()
    finally:
        server.stop()
        starting.join(timeout=300)
        app.state.runner = None
        runner.close()
