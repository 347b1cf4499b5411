"""A small Stripe stand-in on 127.0.0.1 that speaks Stripe's wire format, for tests.

localstripe has no Checkout Sessions, Customer Portal or Prices, and stripe-mock is not
installable here, so this covers exactly what vidrag uses, driven by the real
stripe-python ``StripeClient`` pointed at it by base address:

- requests: form-encoded bodies with Stripe's nested keys (``line_items[0][price]``,
  ``metadata[key]``), ``Authorization: Bearer <secret key>``;
- API versions: a request's ``Stripe-Version`` header is checked (a malformed one is
  refused as Stripe refuses it), recorded in ``versions`` and echoed in the answer's
  ``Stripe-Version`` header; without one the account's default (``API_VERSION``) applies;
- answers: JSON objects with ``id`` and ``object``, lists as ``{"object": "list",
  "data": [...], "has_more": false}``, errors as ``{"error": {"type", "message",
  "code", "param"}}`` with Stripe's statuses (401 bad key, 404 no such object, 400 bad
  parameter);
- resources: customers, prices, checkout sessions, billing portal sessions,
  subscriptions (retrieve, list, update, cancel), invoices and events;
- a hosted checkout page (``/checkout/<id>``, a Pay button) and portal page
  (``/portal/<id>``, Cancel subscription), as a browser meets them;
- webhooks: ``pay``, ``fail_payment``, ``cancel``... record events and POST each one,
  signed with Stripe's scheme (``Stripe-Signature: t=...,v1=<HMAC-SHA256>``) by
  stripe-python's own ``WebhookSignature``, to ``webhook`` (a URL, or a callable taking
  the raw body and headers for an app under FastAPI's TestClient).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_vidrag_fake"
WEBHOOK_SECRET = "whsec_vidrag_fake"
#: the account's default API version (and its webhook endpoint's): stripe-python 16.1's
API_VERSION = "2026-10-28.endive"
VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")
MONTH = 30 * 24 * 3600

Deliver = Callable[[bytes, dict[str, str]], int]


class StripeError(Exception):
    """An error answered in Stripe's shape."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        error = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's nested form keys back into dicts and lists (``a[0][b]=1`` -> {"a": [{"b": "1"}]})."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _lists(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


class FakeStripe:
    """The server and its state; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, *, api_key: str = API_KEY, webhook_secret: str = WEBHOOK_SECRET) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.objects: dict[str, dict[str, dict]] = {
            kind: {}
            for kind in (
                "customer",
                "price",
                "checkout.session",
                "billing_portal.session",
                "subscription",
                "invoice",
            )
        }
        self.events: list[dict] = []
        #: (method, path, params) of every API request, for tests that check what was sent
        self.requests: list[tuple[str, str, dict]] = []
        #: the ``Stripe-Version`` header of every API request (None: none was sent)
        self.versions: list[str | None] = []
        #: the API version events are rendered in (a webhook endpoint's version)
        self.api_version = API_VERSION
        #: where events go: a URL, or a callable(body, headers) -> HTTP status; None keeps them
        self.webhook: str | Deliver | None = None
        #: (event id, HTTP status) of every delivery
        self.deliveries: list[tuple[str, int]] = []
        self.lock = threading.RLock()
        #: what a checkout's hosted page needs later (its items), beside the public object
        self._pending: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            stripe = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake Stripe is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self, **prices: str) -> dict[str, str]:
        """The service's billing environment pointing at this fake (``pro="price_..."``)."""
        out = {
            "STRIPE_API_KEY": self.api_key,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
            "VIDRAG_STRIPE_API_BASE": self.url,
        }
        out.update({f"VIDRAG_STRIPE_PRICE_{plan.upper()}": price for plan, price in prices.items()})
        return out

    # -------------------------------------------------------------------- objects
    def _id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids):04d}{secrets.token_hex(4)}"

    def get(self, kind: str, object_id: str) -> dict:
        with self.lock:
            found = self.objects[kind].get(object_id)
        if found is None:
            raise StripeError(
                404, f"No such {kind.split('.')[-1]}: '{object_id}'", code="resource_missing", param="id"
            )
        return found

    def add_price(self, amount: int = 2900, *, name: str = "Pro", interval: str = "month") -> dict:
        """A recurring price (what a deployment creates in Stripe's dashboard)."""
        return self._create_price(
            {
                "unit_amount": str(amount),
                "currency": "usd",
                "recurring": {"interval": interval},
                "product_data": {"name": name},
            }
        )

    def _create_price(self, params: dict) -> dict:
        price = {
            "id": self._id("price"),
            "object": "price",
            "active": True,
            "currency": params.get("currency", "usd"),
            "unit_amount": int(params.get("unit_amount", 0)),
            "recurring": {"interval": (params.get("recurring") or {}).get("interval", "month")},
            "product": self._id("prod"),
            "nickname": (params.get("product_data") or {}).get("name"),
            "type": "recurring",
        }
        with self.lock:
            self.objects["price"][price["id"]] = price
        return price

    def _create_customer(self, params: dict) -> dict:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        with self.lock:
            self.objects["customer"][customer["id"]] = customer
        return customer

    def _create_checkout(self, params: dict) -> dict:
        if params.get("mode") not in ("subscription", "payment", "setup"):
            raise StripeError(400, "Missing required param: mode.", code="parameter_missing", param="mode")
        if not params.get("success_url"):
            raise StripeError(
                400, "Missing required param: success_url.", code="parameter_missing", param="success_url"
            )
        items = params.get("line_items") or []
        if not items:
            raise StripeError(
                400, "Missing required param: line_items.", code="parameter_missing", param="line_items"
            )
        for n, item in enumerate(items):
            if item.get("price") not in self.objects["price"]:
                raise StripeError(
                    400,
                    f"No such price: '{item.get('price')}'",
                    code="resource_missing",
                    param=f"line_items[{n}][price]",
                )
        if params.get("customer"):
            self.get("customer", params["customer"])
        session_id = self._id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "customer": params.get("customer"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "status": "open",
            "payment_status": "unpaid",
            "subscription": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.url}/checkout/{session_id}",
            "created": int(time.time()),
        }
        with self.lock:
            self.objects["checkout.session"][session_id] = session
            self._pending[session_id] = {
                "items": items,
                "subscription_data": params.get("subscription_data") or {},
            }
        return session

    def _create_portal(self, params: dict) -> dict:
        if not params.get("customer"):
            raise StripeError(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        self.get("customer", params["customer"])
        portal_id = self._id("bps")
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "url": f"{self.url}/portal/{portal_id}",
            "created": int(time.time()),
        }
        with self.lock:
            self.objects["billing_portal.session"][portal_id] = portal
        return portal

    # -------------------------------------------------------------------- actions
    def event(self, kind: str, obj: dict) -> dict:
        """Record an event with a snapshot of ``obj`` (as Stripe does: the state then)."""
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": int(time.time()),
            "type": kind,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        with self.lock:
            self.events.append(event)
        return event

    def _invoice(self, sub: dict, status: str) -> dict:
        invoice = {
            "id": self._id("in"),
            "object": "invoice",
            "customer": sub["customer"],
            "status": status,
            "amount_due": sub["items"]["data"][0]["price"]["unit_amount"],
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub["id"]}},
            "created": int(time.time()),
        }
        with self.lock:
            self.objects["invoice"][invoice["id"]] = invoice
            sub["latest_invoice"] = invoice["id"]
        return invoice

    def pay(self, session_id: str, *, deliver: bool = True) -> list[dict]:
        """Complete a checkout as a paying customer would: a customer (if the session had
        none), an active subscription, a paid invoice, and their events (delivered unless
        ``deliver=False``, in the order Stripe commonly sends them)."""
        with self.lock:
            session = self.get("checkout.session", session_id)
            if session["status"] != "open":
                raise StripeError(
                    400, "This Checkout Session is no longer open.", code="checkout_session_closed"
                )
            pending = self._pending[session_id]
            if not session["customer"]:
                session["customer"] = self._create_customer({"metadata": session["metadata"]})["id"]
            now = int(time.time())
            sub_id = self._id("sub")
            items = [
                {
                    "id": self._id("si"),
                    "object": "subscription_item",
                    "price": self.get("price", item["price"]),
                    "quantity": int(item.get("quantity", 1)),
                    "current_period_start": now,
                    "current_period_end": now + MONTH,
                }
                for item in pending["items"]
            ]
            sub = {
                "id": sub_id,
                "object": "subscription",
                "customer": session["customer"],
                "status": "active",
                "metadata": pending["subscription_data"].get("metadata") or {},
                "items": {
                    "object": "list",
                    "data": items,
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={sub_id}",
                },
                "cancel_at_period_end": False,
                "created": now,
                "latest_invoice": None,
            }
            self.objects["subscription"][sub_id] = sub
            invoice = self._invoice(sub, "paid")
            session.update(status="complete", payment_status="paid", subscription=sub_id)
            events = [
                self.event("customer.subscription.created", sub),
                self.event("checkout.session.completed", session),
                self.event("invoice.paid", invoice),
            ]
        if deliver:
            self.deliver(events)
        return events

    def fail_payment(self, subscription_id: str, *, deliver: bool = True) -> list[dict]:
        """A renewal whose payment fails: the subscription goes ``past_due``."""
        with self.lock:
            sub = self.get("subscription", subscription_id)
            sub["status"] = "past_due"
            invoice = self._invoice(sub, "open")
            events = [
                self.event("invoice.payment_failed", invoice),
                self.event("customer.subscription.updated", sub),
            ]
        if deliver:
            self.deliver(events)
        return events

    def cancel(self, subscription_id: str, *, deliver: bool = True) -> list[dict]:
        """The subscription ends now (from the portal, or Stripe giving up on payment)."""
        with self.lock:
            sub = self.get("subscription", subscription_id)
            sub.update(status="canceled", canceled_at=int(time.time()))
            events = [self.event("customer.subscription.deleted", sub)]
        if deliver:
            self.deliver(events)
        return events

    def sign(self, payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
        """A ``Stripe-Signature`` header, made by stripe-python's own helper."""
        from stripe import WebhookSignature

        return WebhookSignature.generate_signature_header(payload, secret or self.webhook_secret, timestamp)

    def deliver(self, events: list[dict], **sign: Any) -> list[int]:
        """POST each event, signed, to ``webhook``; the HTTP statuses."""
        statuses = []
        for event in events:
            body = json.dumps(event)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": self.sign(body, **sign),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            statuses.append(self.post(body.encode(), headers))
            self.deliveries.append((event["id"], statuses[-1]))
        return statuses

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send one raw delivery to ``webhook`` (no-op answering 0 when none is set)."""
        if self.webhook is None:
            return 0
        if callable(self.webhook):
            return self.webhook(body, headers)
        import httpx

        return httpx.post(self.webhook, content=body, headers=headers, timeout=30).status_code

    # ------------------------------------------------------------------ API table
    def api(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        """One API call: (status, JSON) in Stripe's shape."""
        self.requests.append((method, path, params))
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        route = "/".join(
            p if not re.match(r"^[a-z]+_", p) or p in ("billing_portal",) else "{id}" for p in parts
        )
        # no lock held here: an action may deliver webhooks, whose handler calls back in
        table: dict[tuple[str, str], Callable[[], dict]] = {
            ("POST", "customers"): lambda: self._create_customer(params),
            ("GET", "customers/{id}"): lambda: self.get("customer", parts[1]),
            ("POST", "prices"): lambda: self._create_price(params),
            ("GET", "prices/{id}"): lambda: self.get("price", parts[1]),
            ("POST", "checkout/sessions"): lambda: self._create_checkout(params),
            ("GET", "checkout/sessions/{id}"): lambda: self.get("checkout.session", parts[2]),
            ("POST", "billing_portal/sessions"): lambda: self._create_portal(params),
            ("GET", "subscriptions"): lambda: self._list_subscriptions(params),
            ("GET", "subscriptions/{id}"): lambda: self.get("subscription", parts[1]),
            ("POST", "subscriptions/{id}"): lambda: self._update_subscription(parts[1], params),
            ("DELETE", "subscriptions/{id}"): lambda: self._cancel_now(parts[1]),
            ("GET", "invoices/{id}"): lambda: self.get("invoice", parts[1]),
            ("GET", "events"): lambda: _page(list(reversed(self.events)), "/v1/events"),
            ("GET", "events/{id}"): lambda: self._event(parts[1]),
        }
        handler = table.get((method, route))
        if handler is None:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        return 200, handler()

    def _event(self, event_id: str) -> dict:
        found = next((e for e in self.events if e["id"] == event_id), None)
        if found is None:
            raise StripeError(404, f"No such event: '{event_id}'", code="resource_missing", param="id")
        return found

    def _list_subscriptions(self, params: dict) -> dict:
        subs = list(self.objects["subscription"].values())
        if params.get("customer"):
            subs = [s for s in subs if s["customer"] == params["customer"]]
        status = params.get("status")
        if status and status != "all":
            subs = [s for s in subs if s["status"] == status]
        elif not status:
            subs = [s for s in subs if s["status"] not in ("canceled", "incomplete_expired")]
        return _page(subs, "/v1/subscriptions")

    def _update_subscription(self, subscription_id: str, params: dict) -> dict:
        with self.lock:
            sub = self.get("subscription", subscription_id)
            if "cancel_at_period_end" in params:
                sub["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
            if "metadata" in params:
                sub["metadata"].update(params["metadata"])
            event = self.event("customer.subscription.updated", sub)
        self.deliver([event])
        return sub

    def _cancel_now(self, subscription_id: str) -> dict:
        self.cancel(subscription_id)
        return self.get("subscription", subscription_id)


def _page(data: list[dict], url: str) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # quiet: tests print what fails
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: dict, extra: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", extra)

    def _form(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        query = urlsplit(self.path).query
        return decode_form(parse_qsl(query, keep_blank_values=True) + parse_qsl(raw, keep_blank_values=True))

    def _handle(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            params = self._form()
            if path.startswith("/v1/"):
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {self.stripe.api_key}":
                    shown = auth.removeprefix("Bearer ")[:8]
                    raise StripeError(401, f"Invalid API Key provided: {shown}****")
                version = self.headers.get("Stripe-Version")
                self.stripe.versions.append(version)
                if version is not None and not VERSION_SHAPE.fullmatch(version):
                    raise StripeError(400, f"Invalid Stripe API version: {version[:40]}")
                status, obj = self.stripe.api(method, path, params)
                self._json(status, obj, {"Stripe-Version": version or API_VERSION})
                return
            self._page(method, path)
        except StripeError as exc:
            self._json(exc.status, exc.body())

    def _page(self, method: str, path: str) -> None:
        fake = self.stripe
        match = re.fullmatch(r"/(checkout|portal)/([A-Za-z0-9_]+)(/pay|/cancel)?", path)
        if not match:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        kind, object_id, action = match.groups()
        if kind == "checkout":
            session = fake.get("checkout.session", object_id)
            if method == "POST" and action == "/pay":
                fake.pay(object_id)
                self._send(303, b"", "text/plain", {"Location": session["success_url"]})
                return
            price = fake.get("price", fake._pending[object_id]["items"][0]["price"])
            body = (
                f"<p>Subscribe to {html.escape(price['nickname'] or 'a plan')}: "
                f"${price['unit_amount'] / 100:.2f} a {price['recurring']['interval']}.</p>"
                f'<form method="post" action="/checkout/{object_id}/pay"><button type="submit">Pay</button></form>'
                f'<p><a href="{html.escape(session["cancel_url"] or "/")}">Cancel</a></p>'
            )
            self._send(
                200, PAGE.format(title="Fake Stripe Checkout", body=body).encode(), "text/html; charset=utf-8"
            )
            return
        portal = fake.get("billing_portal.session", object_id)
        subs = [
            s
            for s in fake.objects["subscription"].values()
            if s["customer"] == portal["customer"] and s["status"] != "canceled"
        ]
        if method == "POST" and action == "/cancel":
            for sub in subs:
                fake.cancel(sub["id"])
            self._send(303, b"", "text/plain", {"Location": portal["return_url"] or "/"})
            return
        body = (
            f"<p>{len(subs)} active subscription(s).</p>"
            f'<form method="post" action="/portal/{object_id}/cancel"><button type="submit">Cancel subscription</button></form>'
            f'<p><a href="{html.escape(portal["return_url"] or "/")}">Return</a></p>'
        )
        self._send(
            200, PAGE.format(title="Fake billing portal", body=body).encode(), "text/html; charset=utf-8"
        )

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")
