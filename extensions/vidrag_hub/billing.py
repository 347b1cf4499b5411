"""Billing: the ``BillingProvider`` seam and its Stripe implementation.

Plans change only through Stripe's webhooks (and the reconcile that repairs missed
ones), never through what a browser says after a checkout:

- each webhook is verified against its ``Stripe-Signature`` header over the raw body,
  with Stripe's 300 s tolerance;
- each event id is stored in the same transaction as its effect, so a replayed event
  changes nothing (and a concurrent duplicate loses on the primary key);
- the subscription an event names is fetched fresh from Stripe before anything is
  written, so the order in which events arrive does not matter: the last write is
  Stripe's state now, whichever event caused it;
- a failed payment (subscription ``past_due``) keeps the paid plan for a grace period,
  then the user falls back to the default plan (``settle``, run by the webhook handler,
  ``status`` and ``vidrag-hub billing reconcile``).

Billing records only the plan Stripe sells a user (``plans.set_plan(source="stripe")``);
a plan an administrator set by hand, or an organisation's Enterprise pool, still wins
over it (``vidrag_hub.plans`` decides which plan counts).

Configuration comes only from the environment (``BillingConfig.from_env``): no
``STRIPE_API_KEY`` means billing is off (``Service.billing`` is None) and everyone stays
on the default plan. ``stripe`` is imported only here, inside the service.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Boolean, DateTime, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from vidrag_kernel.errors import Conflict, InvalidInput, NotFound, VidragError

from .errors import Unavailable
from .models import ServiceBase, utcnow

log = logging.getLogger("vidrag_hub.billing")

#: Stripe's own default tolerance for a signature's timestamp, in seconds.
TOLERANCE = 300
#: The metadata key that names the hub user on Stripe's customers and subscriptions.
USER_KEY = "vidrag_user"
#: Subscription states that pay for the plan (``past_due`` does, until the grace ends).
PAYING = ("active", "trialing")
#: Events that may change a plan; every other type is stored and ignored.
HANDLED = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
)
#: ``VIDRAG_STRIPE_PRICE_<PLAN>``: the price id of each paid plan (Pro's is the usual one)
PRICE_PREFIX = "VIDRAG_STRIPE_PRICE_"
PRO_PRICE = "VIDRAG_STRIPE_PRICE_PRO"
#: A webhook body larger than this is refused before it is read further.
MAX_EVENT_BYTES = 1_000_000
#: The Stripe API version this code was written and tested against (stripe-python 16.1's
#: own). Pinned, so that upgrading stripe-python or changing the account's default
#: version in Stripe's dashboard cannot change the shape of what the service reads (where
#: an invoice names its subscription, where a subscription's period is). Set the webhook
#: endpoint in Stripe's dashboard to the same version, so events arrive in this shape too.
STRIPE_API_VERSION = "2026-10-28.endive"
#: Hosts a plain-http ``VIDRAG_STRIPE_API_BASE`` may name (anywhere else the key would
#: travel in clear text).
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ------------------------------------------------------------------------------ errors
class BillingOff(VidragError):
    """Billing is not configured on this service (no Stripe key)."""

    status = 409
    kind = "billing_off"


class InvalidWebhook(VidragError):
    """A webhook delivery that is not a verified, well-formed Stripe event."""

    status = 400
    kind = "invalid_webhook"


class BillingMisconfigured(VidragError, ValueError):
    """The Stripe environment is set, but wrongly: the service refuses to start.

    Its message is one line naming the variable to fix (``python -m vidrag_hub`` prints it
    without a traceback). Also a ``ValueError``, like the service's other settings errors.
    """

    status = 500
    kind = "billing_misconfigured"


class BillingFailed(VidragError):
    """Stripe refused a request the service made for the caller."""

    status = 502
    kind = "billing_failed"


# ------------------------------------------------------------------------------ tables
class BillingCustomer(ServiceBase):
    """The Stripe customer of a hub user (reused by every checkout of theirs)."""

    __tablename__ = "vidrag_billing_customers"

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BillingSubscription(ServiceBase):
    """Stripe's state of one subscription as last fetched, and its grace period."""

    __tablename__ = "vidrag_billing_subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    customer_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    price_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: the plan the price sells (None for a price this service does not know)
    plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    #: set when a payment fails (``past_due``); the paid plan lasts until then
    grace_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BillingEvent(ServiceBase):
    """A webhook event already applied (its id is the replay guard)."""

    __tablename__ = "vidrag_billing_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class BillingConfig:
    """Stripe settings, read from the environment only (keys never come from files)."""

    #: STRIPE_API_KEY
    api_key: str = field(repr=False)
    #: STRIPE_WEBHOOK_SECRET: the signing secret of the webhook endpoint (``whsec_...``)
    webhook_secret: str = field(repr=False)
    #: VIDRAG_STRIPE_PRICE_<PLAN>: the Stripe price id of each paid plan (plan -> price)
    prices: Mapping[str, str] = field(default_factory=dict)
    #: VIDRAG_STRIPE_API_BASE: where Stripe's API is (tests point it at 127.0.0.1)
    api_base: str = ""
    #: VIDRAG_BILLING_GRACE_DAYS: how long a failed payment keeps the paid plan (default 7)
    grace: timedelta = timedelta(days=7)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, book: Any = None) -> BillingConfig | None:
        """The configuration, or None when no ``STRIPE_API_KEY`` is set (billing off).

        A key with anything else wrong is ``BillingMisconfigured``, reported when the
        service starts rather than at the first payment: no webhook secret (plans could
        never change), no price for a paid plan of ``book`` (a ``plans.PlanBook``; the
        default Free/Pro when None) or a price for a plan it does not have, a publishable
        key, a malformed ``VIDRAG_STRIPE_API_BASE``, a grace that is not a number of days.
        """
        env = os.environ if environ is None else environ
        key = env.get("STRIPE_API_KEY", "").strip()
        if not key:
            return None
        if not key.startswith(("sk_", "rk_")):
            shown = "a publishable key (pk_...)" if key.startswith("pk_") else f"{key[:3]!r}..."
            raise BillingMisconfigured(
                f"STRIPE_API_KEY is {shown}: set it to the account's secret key (sk_...) "
                "or a restricted key (rk_...), or unset it to turn billing off"
            )
        secret = env.get("STRIPE_WEBHOOK_SECRET", "").strip()
        if not secret:
            raise BillingMisconfigured(
                "STRIPE_WEBHOOK_SECRET is not set (STRIPE_API_KEY is): set it to the signing secret "
                "(whsec_...) of the webhook endpoint .../stripe/webhook, or webhooks cannot be verified"
            )
        if not secret.startswith("whsec_"):
            raise BillingMisconfigured(
                "STRIPE_WEBHOOK_SECRET is not a webhook signing secret: Stripe's start with whsec_ "
                "(the endpoint's page in Stripe's dashboard shows it)"
            )
        prices = {
            name[len(PRICE_PREFIX) :].lower(): value.strip()
            for name, value in env.items()
            if name.startswith(PRICE_PREFIX) and value.strip()
        }
        _check_prices(prices, book)
        raw = env.get("VIDRAG_BILLING_GRACE_DAYS", "").strip() or "7"
        try:
            grace = timedelta(days=float(raw))
        except (ValueError, OverflowError):
            grace = None
        if grace is None or not timedelta(0) <= grace <= timedelta(days=366):
            raise BillingMisconfigured(
                f"VIDRAG_BILLING_GRACE_DAYS={raw[:40]!r} is not a number of days from 0 to 366"
            )
        return cls(
            api_key=key,
            webhook_secret=secret,
            prices=prices,
            api_base=_api_base(env.get("VIDRAG_STRIPE_API_BASE", "")),
            grace=grace,
        )

    def plan_for_price(self, price_id: str | None) -> str | None:
        return next((plan for plan, price in self.prices.items() if price == price_id), None)


def _paid(book: Any) -> list[str]:
    """The plans of ``book`` people buy: self-service ones other than the default that
    show a price (an Enterprise pool is invoiced by hand, a plan with no price is given
    by an administrator)."""
    from . import plans

    book = book or plans.PlanBook()
    return [
        name
        for name, plan in book.plans.items()
        if name != book.default
        and not name.startswith(plans.ENTERPRISE)
        and plan.price.strip() not in ("", "$0", "0", "free", "Free")
    ]


def _check_prices(prices: Mapping[str, str], book: Any) -> None:
    """Every paid plan has a price, and every price names a plan the service has."""
    from . import plans

    book = book or plans.PlanBook()
    for plan in sorted(prices):
        variable = PRICE_PREFIX + plan.upper()
        if plan == book.default:
            raise BillingMisconfigured(
                f"{variable} is set, but {plan!r} is the default plan, which nobody pays for: unset it"
            )
        if plan not in book.plans or plan.startswith(plans.ENTERPRISE):
            sold = ", ".join(PRICE_PREFIX + p.upper() for p in _paid(book)) or "none"
            raise BillingMisconfigured(
                f"{variable} names no plan of this service (the plans Stripe may sell: {sold}); "
                "fix the plan's name or add the plan to the configured plans"
            )
    paid = _paid(book)
    if not paid and not prices:
        raise BillingMisconfigured(
            "STRIPE_API_KEY is set, but no plan is for sale (none but the default shows a price): "
            "give a plan a price and its VIDRAG_STRIPE_PRICE_<PLAN>, or unset STRIPE_API_KEY"
        )
    missing = [PRICE_PREFIX + p.upper() for p in paid if p not in prices]
    if missing:
        raise BillingMisconfigured(
            f"{missing[0]} is not set (STRIPE_API_KEY is): set it to the Stripe price id (price_...) "
            "of that plan" + (f"; also {', '.join(missing[1:])}" if missing[1:] else "")
        )


def _api_base(raw: str) -> str:
    """``VIDRAG_STRIPE_API_BASE`` checked: empty (Stripe's own), or an https URL (http only
    on this machine), with no query, fragment or trailing ``/v1``."""
    raw = raw.strip().rstrip("/")
    if not raw:
        return ""
    shown = raw[:80]
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    problem = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "is not an http(s) URL with a host, e.g. https://api.stripe.com"
    elif parts.scheme == "http" and parts.hostname not in LOOPBACK:
        problem = "is plain http to another machine: the API key would travel in clear text; use https"
    elif parts.query or parts.fragment or parts.username or parts.password:
        problem = "has a query, fragment or credentials; give the API's base address only"
    elif parts.path.rstrip("/").endswith("/v1"):
        problem = "ends in /v1: give the base address only (the client adds /v1/...)"
    if problem:
        raise BillingMisconfigured(f"VIDRAG_STRIPE_API_BASE={shown!r} {problem}")
    return raw


# --------------------------------------------------------------------------- interface
class BillingProvider(Protocol):
    """What the service asks of a billing backend (``Service.billing``)."""

    def status(self, user: Any) -> dict:
        """The user's billing state for ``GET api/usage`` (``{"enabled": true, ...}``)."""

    def checkout(self, user: str, plan: str | None, return_url: str) -> dict:
        """Start paying for ``plan``: ``{"url": ...}`` of a hosted checkout page."""

    def portal(self, user: str, return_url: str) -> dict:
        """``{"url": ...}`` of a page where the user manages their subscription."""

    def handle_webhook(self, payload: bytes, signature: str | None) -> dict:
        """Verify and apply one webhook delivery; InvalidWebhook when it is not genuine."""

    def reconcile(self) -> list[dict]:
        """Bring every subscribed user's plan in line with the provider; the changes."""


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timezone-aware columns back naive (in UTC, as they were stored)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _stamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) else None


def _iso(value: datetime | None) -> str | None:
    return _aware(value).isoformat() if value is not None else None


def _get(obj: Any, *path: str) -> Any:
    """``obj[a][b]...`` or None, for Stripe objects and plain dicts alike."""
    for key in path:
        if obj is None:
            return None
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


class StripeBilling:
    """Billing on Stripe through stripe-python's ``StripeClient``.

    ``database`` returns the service's catalog (opened lazily by the service);
    ``clock`` is the time source for grace periods (tests move it forward); ``book``
    returns the service's configured plans.
    """

    def __init__(
        self,
        config: BillingConfig,
        database: Callable[[], Any],
        *,
        clock: Callable[[], datetime] = utcnow,
        book: Callable[[], Any] | None = None,
    ) -> None:
        from stripe import StripeClient

        self.config = config
        self.database = database
        self.clock = clock
        #: the service's ``plans.PlanBook`` (its configured plans); None: the defaults
        self.book = book
        self._versions_seen: set[str] = set()
        bases = {"api": config.api_base} if config.api_base else None
        self.client = StripeClient(
            config.api_key,
            base_addresses=bases,
            max_network_retries=2,
            stripe_version=STRIPE_API_VERSION,
        )

    # ----------------------------------------------------------------------- plans
    def _plans(self):
        from . import plans

        return plans

    def _book(self):
        book = self.book() if self.book is not None else None
        return book or self._plans().PlanBook()

    def _current_plan(self, s: Session, user: str) -> str:
        return self._plans().plan_of(s, user, self._book())

    def _entitled(self, row: BillingSubscription, now: datetime) -> bool:
        if row.plan is None:
            return False
        if row.status in PAYING:
            return True
        return row.status == "past_due" and row.grace_until is not None and now < _aware(row.grace_until)

    def _apply(self, s: Session, user: str, actor: str) -> str | None:
        """Record the plan the user's subscriptions pay for (else none); the change or None.

        ``vidrag_hub.plans`` keeps the Stripe plan apart from a plan set by hand and from
        an organisation's pool, and decides which one counts: billing records only its own.
        """
        plans, book = self._plans(), self._book()
        now = self.clock()
        rows = s.scalars(select(BillingSubscription).where(BillingSubscription.user == user)).all()
        paying = sorted(
            (r for r in rows if self._entitled(r, now)),
            key=lambda r: _aware(r.period_start) or datetime.min.replace(tzinfo=UTC),
        )
        plan, period_start = book.default, None
        if paying:
            plan, period_start = paying[-1].plan, _aware(paying[-1].period_start)
        recorded = s.get(plans.PlanRow, user)
        had = (recorded.stripe_plan, _aware(recorded.period_start)) if recorded else (None, None)
        want = (None if plan == book.default else plan, period_start if plan != book.default else None)
        if had == want:
            return None
        before = self._current_plan(s, user)
        plans.set_plan(s, user, plan, source="stripe", actor=actor, period_start=want[1], book=book)
        after = self._current_plan(s, user)
        return f"{user}: {before} -> {after}" if before != after else f"{user}: {after} renewed"

    # ------------------------------------------------------------------ subscriptions
    def _customer_of(self, s: Session, user: str) -> str | None:
        row = s.get(BillingCustomer, user)
        return row.customer_id if row else None

    def _user_of_customer(self, s: Session, customer_id: str | None) -> str | None:
        if not customer_id:
            return None
        return s.scalar(select(BillingCustomer.user).where(BillingCustomer.customer_id == customer_id))

    def _remember_customer(self, s: Session, user: str, customer_id: str | None) -> None:
        if (
            customer_id
            and s.get(BillingCustomer, user) is None
            and self._user_of_customer(s, customer_id) is None
        ):
            s.add(BillingCustomer(user=user, customer_id=customer_id))
            s.flush()

    def _fetch(self, subscription_id: str):
        """The subscription as Stripe has it now; None if Stripe does not know it."""
        import stripe

        try:
            return self.client.v1.subscriptions.retrieve(subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise BillingFailed(f"Stripe refused to describe a subscription: {exc.user_message}") from None
        except stripe.StripeError as exc:
            # not the event's fault: a 503 makes Stripe deliver it again later
            raise Unavailable(
                f"Stripe did not answer ({type(exc).__name__}); the event will be retried"
            ) from None

    def _sync(self, s: Session, subscription_id: str, *, user_hint: str | None, actor: str) -> str:
        """Store Stripe's current state of one subscription and apply it to its user's plan."""
        sub = self._fetch(subscription_id)
        if sub is None:
            return f"subscription {subscription_id} unknown to Stripe: nothing changed"
        row = s.get(BillingSubscription, subscription_id)
        customer = _get(sub, "customer")
        customer = customer if isinstance(customer, str) else _get(customer, "id")
        user = (
            _get(sub, "metadata", USER_KEY)
            or (row.user if row else None)
            or self._user_of_customer(s, customer)
            or user_hint
        )
        if not user:
            return f"subscription {subscription_id} names no hub user: nothing changed"
        self._remember_customer(s, user, customer)
        item = _get(sub, "items", "data", 0) or {}
        price = _get(item, "price", "id")
        status = str(_get(sub, "status") or "incomplete")
        now = self.clock()
        if row is None:
            row = BillingSubscription(subscription_id=subscription_id, user=user, customer_id=customer or "")
            s.add(row)
        row.status = status
        row.price_id = price
        row.plan = self.config.plan_for_price(price)
        row.period_start = _stamp(_get(item, "current_period_start") or _get(sub, "current_period_start"))
        row.period_end = _stamp(_get(item, "current_period_end") or _get(sub, "current_period_end"))
        row.cancel_at_period_end = bool(_get(sub, "cancel_at_period_end"))
        if status == "past_due":
            row.grace_until = row.grace_until or now + self.config.grace
        else:
            row.grace_until = None
        row.updated_at = now
        s.flush()
        change = self._apply(s, user, actor)
        return f"subscription {subscription_id} {status}" + (f"; {change}" if change else "; plan unchanged")

    # ------------------------------------------------------------------------ webhook
    def handle_webhook(self, payload: bytes, signature: str | None) -> dict:
        """Verify one delivery (raw body, ``Stripe-Signature``) and apply it once."""
        import stripe

        if len(payload) > MAX_EVENT_BYTES:
            raise InvalidWebhook("The event is too large to be a Stripe event")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature, self.config.webhook_secret, TOLERANCE)
        except UnicodeDecodeError:
            raise InvalidWebhook("The event body is not UTF-8 text") from None
        except stripe.SignatureVerificationError as exc:
            # names what failed (no header, stale timestamp, no matching signature), not a secret
            raise InvalidWebhook(f"The Stripe-Signature does not verify: {exc.user_message}") from None
        try:
            event = json.loads(text)
        except ValueError:
            raise InvalidWebhook("The event body is not JSON") from None
        event_id, kind = _get(event, "id"), _get(event, "type")
        obj = _get(event, "data", "object")
        if not (isinstance(event_id, str) and event_id and isinstance(kind, str) and isinstance(obj, dict)):
            raise InvalidWebhook("The event has no id, type or data.object")
        version = _get(event, "api_version")
        if isinstance(version, str) and version != STRIPE_API_VERSION and version not in self._versions_seen:
            # still applied (the subscription is fetched fresh, in the pinned version), but
            # the endpoint's objects may be shaped differently: say so once per version
            self._versions_seen.add(version)
            log.warning(
                "Stripe sends webhook events in API version %s, this service is written for %s: "
                "set the webhook endpoint's version to %s in Stripe's dashboard",
                version[:40], STRIPE_API_VERSION, STRIPE_API_VERSION,
            )  # fmt: skip
        catalog = self.database()
        try:
            with catalog.session() as s:
                if s.get(BillingEvent, event_id) is not None:
                    return {"received": True, "event": event_id, "duplicate": True}
                outcome = self._dispatch(s, kind, obj, actor=f"stripe:{event_id}")
                s.add(BillingEvent(event_id=event_id, type=kind[:128], outcome=outcome))
                s.flush()
        except IntegrityError:
            # the same event delivered twice at once: the other delivery applied it
            return {"received": True, "event": event_id, "duplicate": True}
        except VidragError:
            raise
        except Exception:
            log.exception("webhook event %s (%s) could not be applied", event_id, kind)
            raise InvalidWebhook(
                "The event could not be applied; the service's log has the details"
            ) from None
        log.info("webhook %s %s: %s", event_id, kind, outcome)
        return {"received": True, "event": event_id, "outcome": outcome}

    def _dispatch(self, s: Session, kind: str, obj: dict, *, actor: str) -> str:
        if kind not in HANDLED:
            return "ignored: not an event vidrag acts on"
        if kind == "checkout.session.completed":
            if obj.get("mode") != "subscription" or not obj.get("subscription"):
                return "ignored: not a subscription checkout"
            user = obj.get("client_reference_id") or _get(obj, "metadata", USER_KEY)
            customer = obj.get("customer")
            if user and isinstance(customer, str):
                self._remember_customer(s, str(user), customer)
            return self._sync(s, str(obj["subscription"]), user_hint=user, actor=actor)
        if kind.startswith("customer.subscription."):
            if not isinstance(obj.get("id"), str):
                return "ignored: no subscription id"
            return self._sync(s, obj["id"], user_hint=None, actor=actor)
        # invoices name their subscription at the top (older API versions) or under parent
        sub = obj.get("subscription") or _get(obj, "parent", "subscription_details", "subscription")
        if isinstance(sub, dict):
            sub = sub.get("id")
        if not isinstance(sub, str):
            return "ignored: an invoice of no subscription"
        return self._sync(s, sub, user_hint=None, actor=actor)

    # ---------------------------------------------------------------- grace, reconcile
    def settle(self, user: str | None = None) -> list[str]:
        """Downgrade users whose grace period has ended (one user, or everyone)."""
        now = self.clock()
        changes = []
        with self.database().session() as s:
            query = select(BillingSubscription).where(
                BillingSubscription.status == "past_due", BillingSubscription.grace_until.is_not(None)
            )
            if user is not None:
                query = query.where(BillingSubscription.user == user)
            due = {r.user for r in s.scalars(query) if _aware(r.grace_until) <= now}
            for name in sorted(due):
                change = self._apply(s, name, actor="vidrag:grace-ended")
                if change:
                    changes.append(change)
        return changes

    def reconcile(self) -> list[dict]:
        """Fetch every known customer's subscriptions from Stripe and apply them.

        Repairs whatever missed webhooks left behind (a delivery lost, an endpoint down
        for longer than Stripe retries), then ends grace periods that are over.
        """
        with self.database().session() as s:
            customers = {c.customer_id: c.user for c in s.scalars(select(BillingCustomer))}
            known = {r.subscription_id: r.user for r in s.scalars(select(BillingSubscription))}
        out = []
        seen = set()
        for customer, user in sorted(customers.items()):
            try:
                page = self.client.v1.subscriptions.list(
                    params={"customer": customer, "status": "all", "limit": 100}
                )
            except Exception as exc:
                out.append({"user": user, "error": f"Stripe did not list subscriptions: {exc}"})
                continue
            for sub in page.auto_paging_iter():
                seen.add(sub["id"])
                out.append(self._reconcile_one(sub["id"], user))
        for subscription_id, user in sorted(known.items()):
            if subscription_id not in seen:
                out.append(self._reconcile_one(subscription_id, user))
        out.extend({"user": c.split(":")[0], "outcome": c} for c in self.settle())
        return out

    def _reconcile_one(self, subscription_id: str, user: str) -> dict:
        try:
            with self.database().session() as s:
                outcome = self._sync(s, subscription_id, user_hint=user, actor="vidrag:reconcile")
        except VidragError as exc:
            return {"user": user, "subscription": subscription_id, "error": exc.message}
        return {"user": user, "subscription": subscription_id, "outcome": outcome}

    # ---------------------------------------------------------------- user-facing API
    def status(self, user: Any) -> dict:
        """The billing part of ``GET api/usage``: plan, subscription, what the user may do
        (``user`` is a name or a ``HubUser``)."""
        user = getattr(user, "name", user)
        self.settle(user)
        now = self.clock()
        with self.database().session() as s:
            plan = self._current_plan(s, user)
            rows = s.scalars(
                select(BillingSubscription)
                .where(BillingSubscription.user == user)
                .order_by(BillingSubscription.updated_at.desc())
            ).all()
            customer = self._customer_of(s, user)
            paying = [r for r in rows if self._entitled(r, now)]
            shown = paying[0] if paying else (rows[0] if rows else None)
            subscription = None
            if shown is not None:
                subscription = {
                    "plan": shown.plan,
                    "status": shown.status,
                    "period_end": _iso(shown.period_end),
                    "cancel_at_period_end": shown.cancel_at_period_end,
                    "grace_until": _iso(shown.grace_until),
                }
        return {
            "enabled": True,
            "provider": "stripe",
            "plan": plan,
            "plans": sorted(self.config.prices),
            "subscription": subscription,
            "can_upgrade": not paying and plan == self._book().default,
            "can_manage": customer is not None,
        }

    def checkout(self, user: str, plan: str | None, return_url: str) -> dict:
        """A Checkout Session (mode ``subscription``) for ``plan``, the customer reused."""
        import stripe

        plan = (plan or next(iter(sorted(self.config.prices)))).lower()
        price = self.config.prices.get(plan)
        if price is None:
            raise InvalidInput(
                f"No plan {plan!r} can be bought; one of: {', '.join(sorted(self.config.prices))}"
            )
        status = self.status(user)
        if status["subscription"] and not status["can_upgrade"]:
            raise Conflict("You already have a subscription: use Manage billing to change it")
        customer = self._customer(user)
        try:
            session = self.client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": user,
                    "line_items": [{"price": price, "quantity": 1}],
                    "success_url": _with(return_url, "billing=success"),
                    "cancel_url": _with(return_url, "billing=cancelled"),
                    "metadata": {USER_KEY: user, "plan": plan},
                    "subscription_data": {"metadata": {USER_KEY: user, "plan": plan}},
                }
            )
        except stripe.StripeError as exc:
            raise BillingFailed(
                f"Stripe could not start a checkout: {exc.user_message or type(exc).__name__}"
            ) from None
        return {"url": session["url"], "id": session["id"], "plan": plan}

    def _customer(self, user: str) -> str:
        """The user's Stripe customer, created (and stored) on their first checkout."""
        import stripe

        with self.database().session() as s:
            known = self._customer_of(s, user)
        if known:
            return known
        try:
            customer = self.client.v1.customers.create(params={"name": user, "metadata": {USER_KEY: user}})
        except stripe.StripeError as exc:
            raise BillingFailed(
                f"Stripe could not create a customer: {exc.user_message or type(exc).__name__}"
            ) from None
        try:
            with self.database().session() as s:
                s.add(BillingCustomer(user=user, customer_id=customer["id"]))
        except IntegrityError:
            # two checkouts at once: keep the first customer stored (the other stays unused)
            with self.database().session() as s:
                return self._customer_of(s, user) or customer["id"]
        return customer["id"]

    def portal(self, user: str, return_url: str) -> dict:
        """A Customer Portal session for the user's customer."""
        import stripe

        with self.database().session() as s:
            customer = self._customer_of(s, user)
        if customer is None:
            raise NotFound("You have no billing account yet: Upgrade first")
        try:
            session = self.client.v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            )
        except stripe.StripeError as exc:
            raise BillingFailed(
                f"Stripe could not open billing: {exc.user_message or type(exc).__name__}"
            ) from None
        return {"url": session["url"]}


def _with(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def from_env(
    database: Callable[[], Any],
    environ: Mapping[str, str] | None = None,
    *,
    book: Callable[[], Any] | None = None,
) -> StripeBilling | None:
    """The billing provider the environment configures, or None (billing off)."""
    config = BillingConfig.from_env(environ, book() if book is not None else None)
    return StripeBilling(config, database, book=book) if config else None


def reconcile_all(service: Any) -> dict:
    """The periodic reconcile, for the service's scheduler: every subscribed user's plan
    brought in line with Stripe (``StripeBilling.reconcile``), grace periods that are over
    ended, and the quota reservations of jobs that died expired. Never raises: what
    failed is in the summary (and the log), and the next run tries again.

    The summary: ``{"enabled": bool, "subscriptions": n checked, "changed": ["user: free
    -> pro", ...], "errors": ["...", ...], "expired_reservations": n}``.
    """
    summary: dict[str, Any] = {
        "enabled": getattr(service, "billing", None) is not None,
        "subscriptions": 0,
        "changed": [],
        "errors": [],
        "expired_reservations": 0,
    }
    billing = getattr(service, "billing", None)
    if billing is not None:
        try:
            rows = billing.reconcile()
        except Exception as exc:  # a scheduler job must not die of one bad run
            log.exception("the billing reconcile failed")
            rows = [{"error": f"the reconcile failed: {type(exc).__name__}"}]
        for row in rows:
            if "error" in row:
                summary["errors"].append(f"{row.get('user') or '?'}: {row['error']}")
                continue
            if row.get("subscription"):
                summary["subscriptions"] += 1
            outcome = str(row.get("outcome") or "")
            if "->" in outcome:
                summary["changed"].append(outcome.split("; ")[-1])
    quotas = getattr(service, "quotas", None)
    if quotas is not None:
        try:
            summary["expired_reservations"] = quotas.sweep(None)
        except Exception as exc:
            log.exception("expiring dead quota reservations failed")
            summary["errors"].append(f"quota sweep: {type(exc).__name__}")
    log.info(
        "billing reconcile: %d subscriptions, %d changed, %d errors, %d reservations expired",
        summary["subscriptions"], len(summary["changed"]), len(summary["errors"]),
        summary["expired_reservations"],
    )  # fmt: skip
    return summary
