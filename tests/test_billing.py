"""Stripe billing end to end: Upgrade, a paid checkout, webhooks, a new plan; a failed
payment's grace period and downgrade; webhooks that must change nothing.

The real service app on uvicorn on 127.0.0.1 (so Stripe's deliveries are real HTTP POSTs
of a raw body), checking hub tokens with a real JupyterHub; the real stripe-python
``StripeClient`` talks to ``tests.support.fake_stripe`` (Stripe's wire format), which
signs its webhooks with stripe-python's own ``WebhookSignature``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest
from vidrag_hub import plans
from vidrag_hub.app import Service, make_app
from vidrag_hub.billing import (
    STRIPE_API_VERSION,
    BillingConfig,
    BillingEvent,
    BillingMisconfigured,
    reconcile_all,
)
from vidrag_hub.billing import from_env as billing_from_env
from vidrag_hub.billing_routes import provider_from_env
from vidrag_hub.models import utcnow
from vidrag_hub.plans import PlanBook
from vidrag_hub.settings import ServiceSettings

from tests.support.fake_stripe import API_VERSION, FakeStripe, decode_form
from tests.support.hub import free_port
from tests.support.service import Served, ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.slow]

USERS = ("pat", "quinn", "rae", "sol", "tao", "uma", "vic", "ada")
WEBHOOK = "/services/vidrag/stripe/webhook"


class World:
    """One service app on uvicorn on 127.0.0.1 with its own database and its own fake
    Stripe (whose webhooks go to that app), checking tokens with the shared hub."""

    def __init__(self, hub: ServiceHub, root, *, port: int, database_url: str = "") -> None:
        self.hub, self.root, self.port, self.database_url = hub, root, port, database_url
        self.tokens: dict[str, str] = {}

    def __enter__(self) -> World:
        self._stack = ExitStack().__enter__()
        self.stripe = self._stack.enter_context(FakeStripe())
        self.stripe.price = self.stripe.add_price(2900, name="Pro")
        self.app = make_app(self.hub.settings(self.root, database_url=self.database_url))
        self.service = self.app.state.service
        self.service.billing = provider_from_env(self.service, self.stripe.env(pro=self.stripe.price["id"]))
        served = self._stack.enter_context(Served(self.app, self.port))
        self.http = self._stack.enter_context(httpx.Client(base_url=served.url, timeout=30))
        self.stripe.webhook = served.url + WEBHOOK
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The SQLite world, at the port the hub expects its service on."""
    hub = ServiceHub(tmp_path_factory.mktemp("billing-hub"))
    # the service listens before the hub starts: the hub waits for its external services
    with World(hub, tmp_path_factory.mktemp("billing-root"), port=hub.service_port) as world:
        hub.start()
        for name in USERS:
            hub.user(name)
        world.tokens = {name: hub.token(name) for name in USERS}
        yield world
        assert hub.stop() == []


@pytest.fixture(scope="module")
def pg_world(world, postgres, tmp_path_factory):
    """The same service on PostgreSQL (same hub and tokens, its own fake Stripe)."""
    url = postgres.create_database(f"billing_{uuid.uuid4().hex[:8]}")
    with World(world.hub, tmp_path_factory.mktemp("billing-pg"), port=free_port(), database_url=url) as pg:
        pg.tokens = world.tokens
        yield pg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_world(request):
    """The whole flow and the webhook guards run on both databases (the rest on SQLite)."""
    return request.getfixturevalue("world" if request.param == "sqlite" else "pg_world")


@pytest.fixture
def stripe_fake(world):
    return world.stripe


def api(world, user, method, path, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"token {world.tokens[user]}"}
    return world.http.request(method, f"/services/vidrag/api/{path}", headers=headers, **kwargs)


def plan(world, user) -> str:
    with world.service.catalog.session() as s:
        return plans.plan_of(s, user, world.service.quotas.book)


def audit(world, user) -> list[dict]:
    with world.service.catalog.session() as s:
        return plans.changes(s, user)


def upgrade(world, stripe_fake, user) -> str:
    """Press Upgrade: the checkout session's id (at the fake Stripe)."""
    reply = api(world, user, "POST", "billing/checkout", json={"return_url": "http://127.0.0.1:1/usage"})
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    assert url.startswith(stripe_fake.url + "/checkout/cs_")
    return url.rsplit("/", 1)[1]


def post_raw(world, body: bytes | str, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return world.http.post(WEBHOOK, content=body, headers=headers)


# -------------------------------------------------------------------------- config
GOOD = {
    "STRIPE_API_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "VIDRAG_STRIPE_PRICE_PRO": "price_123",
}
#: a Stripe environment set wrongly -> the variable its one line must name
MISCONFIGURED = [
    ({"STRIPE_API_KEY": "sk_test_x"}, "STRIPE_WEBHOOK_SECRET"),
    ({**GOOD, "STRIPE_WEBHOOK_SECRET": "sk_test_x"}, "STRIPE_WEBHOOK_SECRET"),
    ({**GOOD, "VIDRAG_STRIPE_PRICE_PRO": ""}, "VIDRAG_STRIPE_PRICE_PRO"),
    (
        {**GOOD, "VIDRAG_STRIPE_PRICE_PRO": "", "VIDRAG_STRIPE_PRICE_PR0": "price_1"},
        "VIDRAG_STRIPE_PRICE_PR0",
    ),
    ({**GOOD, "VIDRAG_STRIPE_PRICE_FREE": "price_0"}, "VIDRAG_STRIPE_PRICE_FREE"),
    ({**GOOD, "STRIPE_API_KEY": "pk_live_x"}, "STRIPE_API_KEY"),
    ({**GOOD, "VIDRAG_STRIPE_API_BASE": "api.stripe.com"}, "VIDRAG_STRIPE_API_BASE"),
    ({**GOOD, "VIDRAG_STRIPE_API_BASE": "http://127.0.0.1:notaport"}, "VIDRAG_STRIPE_API_BASE"),
    ({**GOOD, "VIDRAG_STRIPE_API_BASE": "http://stripe.example.com"}, "VIDRAG_STRIPE_API_BASE"),
    ({**GOOD, "VIDRAG_STRIPE_API_BASE": "https://api.stripe.com/v1"}, "VIDRAG_STRIPE_API_BASE"),
    ({**GOOD, "VIDRAG_BILLING_GRACE_DAYS": "a week"}, "VIDRAG_BILLING_GRACE_DAYS"),
    ({**GOOD, "VIDRAG_BILLING_GRACE_DAYS": "-1"}, "VIDRAG_BILLING_GRACE_DAYS"),
]


def test_billing_is_off_without_a_key_and_a_misconfigured_key_names_the_variable():
    assert BillingConfig.from_env({}) is None
    for env, variable in MISCONFIGURED:
        with pytest.raises(BillingMisconfigured) as refused:
            BillingConfig.from_env(env)
        message = refused.value.message
        assert message.startswith(variable) and "\n" not in message, (env, message)
        assert "sk_test_x" not in message and "pk_live_x" not in message  # never the key itself
    # a plan the deployment sells needs its price; one it gives by hand does not
    book = PlanBook({"plans": {"team": {"price": "$99 a month"}, "staff": {"videos": 9}}})
    with pytest.raises(BillingMisconfigured, match="^VIDRAG_STRIPE_PRICE_TEAM is not set"):
        BillingConfig.from_env(GOOD, book)
    assert BillingConfig.from_env({**GOOD, "VIDRAG_STRIPE_PRICE_TEAM": "price_9"}, book).prices == {
        "pro": "price_123",
        "team": "price_9",
    }
    config = BillingConfig.from_env(
        {**GOOD, "VIDRAG_BILLING_GRACE_DAYS": "3", "VIDRAG_STRIPE_API_BASE": "https://stripe.internal:8443/"}
    )
    assert config.prices == {"pro": "price_123"} and config.grace == timedelta(days=3)
    assert config.api_base == "https://stripe.internal:8443"
    assert "sk_test_x" not in repr(config) and "whsec_x" not in repr(config)
    assert decode_form([("line_items[0][price]", "p"), ("metadata[a]", "b"), ("mode", "x")]) == {
        "line_items": [{"price": "p"}],
        "metadata": {"a": "b"},
        "mode": "x",
    }


def test_a_misconfigured_stripe_environment_stops_the_service_with_one_line(monkeypatch, tmp_path):
    # make_app: the error, before anything listens
    for name, value in {**GOOD, "VIDRAG_STRIPE_API_BASE": "htp:/stripe"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BillingMisconfigured, match="^VIDRAG_STRIPE_API_BASE='htp:/stripe' is not"):
        make_app(ServiceSettings(shared_root=tmp_path / "app"))
    for name in (*GOOD, "VIDRAG_STRIPE_API_BASE"):
        monkeypatch.delenv(name)

    # python -m vidrag_hub as JupyterHub starts it: one line on stderr, exit code 2
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "VIDRAG_STRIPE_"))}
    base.update(
        JUPYTERHUB_API_TOKEN="not-a-real-token",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        VIDRAG_SHARED_ROOT=str(tmp_path / "shared"),
        VIDRAG_HOME=str(tmp_path / "shared"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "vidrag_hub"],
        env={**base, **MISCONFIGURED[0][0]},  # a key, no webhook secret
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("vidrag-hub: STRIPE_WEBHOOK_SECRET is not set"), lines
    assert "sk_test_x" not in done.stderr + done.stdout
    assert not (tmp_path / "shared").exists()  # stopped before it opened anything


def test_the_stripe_api_version_is_pinned_and_the_fake_echoes_it():
    from stripe import StripeClient

    def echoed(obj) -> str:
        return {k.lower(): v for k, v in obj.last_response.headers.items()}["stripe-version"]

    with FakeStripe() as fake:
        billing = billing_from_env(lambda: None, fake.env(pro=fake.add_price()["id"]))
        customer = billing.client.v1.customers.create(params={"name": "ada"})
        assert fake.versions == [STRIPE_API_VERSION] == [API_VERSION]
        assert echoed(customer) == STRIPE_API_VERSION
        older = StripeClient(fake.api_key, base_addresses={"api": fake.url}, stripe_version="2024-06-20")
        assert echoed(older.v1.customers.retrieve(customer.id)) == "2024-06-20"
        odd = httpx.get(
            fake.url + f"/v1/customers/{customer.id}",
            headers={"Authorization": f"Bearer {fake.api_key}", "Stripe-Version": "yesterday"},
        )
        assert odd.status_code == 400 and "Invalid Stripe API version" in odd.json()["error"]["message"]
        plain = httpx.get(
            fake.url + f"/v1/customers/{customer.id}", headers={"Authorization": f"Bearer {fake.api_key}"}
        )
        assert plain.status_code == 200 and plain.headers["Stripe-Version"] == API_VERSION
        assert fake.event("customer.created", customer.to_dict())["api_version"] == STRIPE_API_VERSION


def test_with_billing_off_usage_says_so_and_checkout_is_refused(world, tmp_path):
    from fastapi.testclient import TestClient

    app = make_app(world.hub.settings(tmp_path))
    assert app.state.service.billing is None
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"token {world.tokens['pat']}"}
        usage = client.get("/services/vidrag/api/usage", headers=headers)
        assert usage.status_code == 200 and usage.json()["billing"] == {"enabled": False}
        assert usage.json()["plan"]["name"] == "free"
        refused = client.post("/services/vidrag/api/billing/checkout", headers=headers, json={})
        assert refused.status_code == 409 and refused.json()["error"] == "billing_off"
        hook = client.post(WEBHOOK, content=b"{}")
        assert hook.status_code == 409 and hook.json()["error"] == "billing_off"


# ---------------------------------------------------------------------------- flow
def test_upgrade_pay_webhook_new_limit_then_manage_billing(db_world):
    world, stripe_fake = db_world, db_world.stripe
    before = api(world, "pat", "GET", "usage").json()
    assert before["plan"]["name"] == "free" and before["billing"]["can_upgrade"] is True
    free_messages = before["metrics"]["messages"]["limit"]

    session_id = upgrade(world, stripe_fake, "pat")
    session = stripe_fake.get("checkout.session", session_id)
    assert session["mode"] == "subscription" and session["client_reference_id"] == "pat"
    customer = stripe_fake.get("customer", session["customer"])
    assert customer["metadata"] == {"vidrag_user": "pat"}
    assert plan(world, "pat") == "free"  # a checkout started is not a plan: only webhooks change it

    # the customer pays on Stripe's page; Stripe POSTs the signed events to the service
    stripe_fake.pay(session_id)
    assert [status for _, status in stripe_fake.deliveries[-3:]] == [200, 200, 200]
    assert plan(world, "pat") == "pro"
    after = api(world, "pat", "GET", "usage").json()
    assert after["plan"]["name"] == "pro"
    pro_messages = after["metrics"]["messages"]["limit"]
    assert pro_messages == 5000 and free_messages == 50
    assert after["billing"]["subscription"]["status"] == "active"
    assert after["billing"]["can_upgrade"] is False and after["billing"]["can_manage"] is True
    [change] = [c for c in audit(world, "pat") if c["new_plan"] == "pro"]
    assert change["source"] == "stripe" and change["actor"].startswith("stripe:evt_")

    # a second Upgrade is refused (Manage billing changes a subscription), the portal opens
    again = api(world, "pat", "POST", "billing/checkout", json={})
    assert again.status_code == 409, again.text
    portal = api(world, "pat", "POST", "billing/portal", json={"return_url": "http://127.0.0.1:1/usage"})
    assert portal.status_code == 200 and portal.json()["url"].startswith(stripe_fake.url + "/portal/bps_")

    # cancelling in the portal ends the subscription: back to Free, nothing deleted
    sub_id = session_id and stripe_fake.get("checkout.session", session_id)["subscription"]
    stripe_fake.cancel(sub_id)
    assert plan(world, "pat") == "free"
    # upgrading again reuses the customer
    upgrade(world, stripe_fake, "pat")
    creates = [p for m, path, p in stripe_fake.requests if (m, path) == ("POST", "/v1/customers")]
    assert sum(1 for p in creates if p["metadata"]["vidrag_user"] == "pat") == 1


def test_a_failed_payment_keeps_pro_through_the_grace_period_then_free(world, stripe_fake):
    billing = world.service.billing
    stripe_fake.pay(upgrade(world, stripe_fake, "quinn"))
    assert plan(world, "quinn") == "pro"
    [sub] = [
        s for s in stripe_fake.objects["subscription"].values() if s["metadata"].get("vidrag_user") == "quinn"
    ]

    stripe_fake.fail_payment(sub["id"])
    assert plan(world, "quinn") == "pro"
    status = api(world, "quinn", "GET", "usage").json()["billing"]
    assert status["subscription"]["status"] == "past_due" and status["subscription"]["grace_until"]
    try:
        billing.clock = lambda: utcnow() + timedelta(days=6)
        assert billing.reconcile() is not None and plan(world, "quinn") == "pro"
        # the grace is over: the next look at the account (here the usage page) downgrades
        billing.clock = lambda: utcnow() + timedelta(days=7, minutes=1)
        usage = api(world, "quinn", "GET", "usage").json()
        assert plan(world, "quinn") == "free" and usage["billing"]["can_upgrade"] is True
        assert audit(world, "quinn")[0]["actor"] == "vidrag:grace-ended"
    finally:
        billing.clock = utcnow


def test_reconcile_from_the_command_line_repairs_a_missed_webhook(world, stripe_fake):
    stripe_fake.pay(upgrade(world, stripe_fake, "rae"))
    assert plan(world, "rae") == "pro"
    [sub] = [
        s for s in stripe_fake.objects["subscription"].values() if s["metadata"].get("vidrag_user") == "rae"
    ]
    stripe_fake.cancel(sub["id"], deliver=False)  # the endpoint never heard of it
    assert plan(world, "rae") == "pro"

    env = {
        **os.environ,
        **stripe_fake.env(pro=stripe_fake.price["id"]),
        "VIDRAG_SHARED_ROOT": str(world.root),
        "VIDRAG_HOME": str(world.root),
    }
    done = subprocess.run(
        [sys.executable, "-m", "vidrag_hub", "billing", "reconcile", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any(r.get("user") == "rae" and "canceled" in r.get("outcome", "") for r in report), report
    assert plan(world, "rae") == "free"


def test_the_schedulers_reconcile_repairs_a_missed_cancel_and_says_what_changed(world, stripe_fake, tmp_path):
    stripe_fake.pay(upgrade(world, stripe_fake, "vic"))
    assert plan(world, "vic") == "pro"
    stripe_fake.cancel(_subscription_of(stripe_fake, "vic")["id"], deliver=False)
    summary = reconcile_all(world.service)
    assert summary["enabled"] is True and summary["errors"] == [], summary
    assert "vic: pro -> free" in summary["changed"] and summary["subscriptions"] >= 1, summary
    assert plan(world, "vic") == "free"
    assert reconcile_all(world.service)["changed"] == []  # in line now: nothing more to do
    # billing off: nothing to reconcile, and nothing wrong
    off = Service(ServiceSettings(shared_root=tmp_path))
    try:
        assert reconcile_all(off) == {
            "enabled": False,
            "subscriptions": 0,
            "changed": [],
            "errors": [],
            "expired_reservations": 0,
        }
    finally:
        off.catalog.close()


# ------------------------------------------------------------------------ webhooks
def _subscription_of(stripe_fake, user: str) -> dict:
    [sub] = [
        s for s in stripe_fake.objects["subscription"].values() if s["metadata"].get("vidrag_user") == user
    ]
    return sub


def test_out_of_order_events_end_in_stripes_state(world, stripe_fake):
    events = stripe_fake.pay(upgrade(world, stripe_fake, "sol"), deliver=False)
    sub = _subscription_of(stripe_fake, "sol")
    updated = stripe_fake.event("customer.subscription.updated", sub)
    # subscription.updated first, before checkout.session.completed: the subscription is
    # fetched fresh and names its user, so the order does not matter
    assert stripe_fake.deliver([updated]) == [200]
    assert plan(world, "sol") == "pro"
    assert stripe_fake.deliver(list(reversed(events))) == [200, 200, 200]
    assert plan(world, "sol") == "pro"
    # an old snapshot that says past_due, delivered late, does not win over Stripe's state now
    stale = stripe_fake.event("customer.subscription.updated", {**sub, "status": "canceled"})
    assert stripe_fake.deliver([stale]) == [200]
    assert plan(world, "sol") == "pro"


def test_forged_stale_replayed_unknown_and_malformed_events_change_nothing(db_world):
    world, stripe_fake = db_world, db_world.stripe
    events = stripe_fake.pay(upgrade(world, stripe_fake, "tao"), deliver=False)
    body = json.dumps(events[1])  # checkout.session.completed
    now = int(time.time())

    def refused(reply, kind="invalid_webhook"):
        assert 400 <= reply.status_code < 500, reply.text
        assert reply.json()["error"] == kind and "Traceback" not in reply.text
        assert plan(world, "tao") == "free"

    refused(post_raw(world, body, stripe_fake.sign(body, secret="whsec_not_the_secret")))  # forged
    refused(post_raw(world, body, None))  # unsigned
    refused(post_raw(world, body, f"t={now},v1={'0' * 64}"))
    refused(post_raw(world, body, stripe_fake.sign(body, timestamp=now - 301)))  # stale
    refused(post_raw(world, body + " ", stripe_fake.sign(body)))  # body changed after signing
    refused(post_raw(world, "garbage", "t=x,v1"))
    for bad in ("not json", "[]", "{}", json.dumps({"id": "evt_1", "type": "invoice.paid"})):
        refused(post_raw(world, bad, stripe_fake.sign(bad)))  # signed, but not an event
    unknown = stripe_fake.event(
        "customer.created", stripe_fake.get("customer", events[1]["data"]["object"]["customer"])
    )
    assert stripe_fake.deliver([unknown]) == [200]
    assert plan(world, "tao") == "free"
    # an event naming a subscription Stripe does not know is stored and changes nothing
    ghost = stripe_fake.event(
        "invoice.paid", {"id": "in_ghost", "object": "invoice", "subscription": "sub_ghost"}
    )
    assert stripe_fake.deliver([ghost]) == [200]
    assert plan(world, "tao") == "free"

    # the genuine event, then the same delivery again: applied once
    first = post_raw(world, body, stripe_fake.sign(body))
    assert first.status_code == 200 and plan(world, "tao") == "pro"
    changes = len(audit(world, "tao"))
    stripe_fake.cancel(_subscription_of(stripe_fake, "tao")["id"], deliver=False)
    replay = post_raw(world, body, stripe_fake.sign(body))
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert plan(world, "tao") == "pro" and len(audit(world, "tao")) == changes
    with world.service.catalog.session() as s:
        assert s.get(BillingEvent, events[1]["id"]).type == "checkout.session.completed"


def test_checkout_refuses_an_unknown_plan_and_a_bad_return_url(world):
    reply = api(world, "uma", "POST", "billing/checkout", json={"plan": "platinum"})
    assert reply.status_code == 400 and "platinum" in reply.json()["message"]
    reply = api(world, "uma", "POST", "billing/checkout", json={"return_url": "javascript:alert(1)"})
    assert reply.status_code == 400
    reply = api(world, "uma", "POST", "billing/portal", json={})
    assert reply.status_code == 404 and "Upgrade first" in reply.json()["message"]
