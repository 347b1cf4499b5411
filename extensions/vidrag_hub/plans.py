"""Plans: what each account may use, and who is on which plan.

The limits come from the deployment's configuration (``hub_config/plans.py`` traitlets,
handed to the service as the ``VIDRAG_PLANS`` JSON in ``ServiceSettings.plans``):

    plan        videos  minutes  messages a month  storage
    free             2       60                50     1 GB
    pro            200    6,000             5,000    50 GB
    enterprise   per JupyterHub group (its members share one pool)

Who is on which plan lives in the service's database (``vidrag_plans``, one row per user
who ever had a plan set or belonged to an enterprise group), every change with an audit
row (``vidrag_plan_changes``). A user's plan, in order of precedence:

1. a plan an admin set by hand (``source="admin"``), which may be an enterprise pool;
2. membership of an enterprise group (the organisation pays: ``enterprise:<group>``);
3. a plan Stripe's webhooks set (``source="stripe"``);
4. the configured default plan (``free`` unless configured).

The account a plan's usage counts against is ``user:<name>``, or ``group:<name>`` for
an enterprise pool. Groups are only known for a user on their own request, so the group
seen last is recorded on their row (``org``): the owner of a collection is charged by
what the service last saw of them, which is current for anyone who uses the service.
"""

from __future__ import annotations

import calendar
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from vidrag_kernel.errors import InvalidInput

from .models import ServiceBase, utcnow

#: the metrics a plan limits, in the ledger's units: a count, seconds of video, a count
#: per period, bytes of media
METRICS = ("videos", "minutes", "messages", "storage")
#: what each metric is measured in, in the ledger (``usage.py`` shows minutes as minutes)
UNITS = {"videos": "videos", "minutes": "seconds", "messages": "messages", "storage": "bytes"}
GB = 1024**3

#: the issue's table; ``VIDRAG_PLANS`` (``c.VidragPlans.plans``) replaces a plan by name
DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    "free": {"title": "Free", "price": "$0", "videos": 2, "minutes": 60, "messages": 50, "storage_gb": 1},
    "pro": {
        "title": "Pro",
        "price": "$29 a month",
        "videos": 200,
        "minutes": 6000,
        "messages": 5000,
        "storage_gb": 50,
    },
}
SOURCES = ("default", "admin", "stripe")
ENTERPRISE = "enterprise:"


@dataclass(frozen=True)
class Plan:
    """One plan's limits in ledger units (None = no limit)."""

    name: str
    title: str
    price: str
    videos: int | None
    minutes: int | None  # seconds of video
    messages: int | None
    storage: int | None  # bytes

    def limit(self, metric: str) -> int | None:
        return getattr(self, metric)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "price": self.price,
            "limits": {
                "videos": self.videos,
                "minutes": None if self.minutes is None else self.minutes / 60,
                "messages": self.messages,
                "storage_bytes": self.storage,
            },
        }


def _number(value: Any, scale: float, what: str) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"plan limit {what} must be a number or null, not {value!r}") from None
    if number < 0:
        raise InvalidInput(f"plan limit {what} is never negative")
    return int(round(number * scale))


def plan_from(name: str, spec: Mapping[str, Any]) -> Plan:
    """A ``Plan`` from configuration units (videos, minutes, messages, storage_gb)."""
    known = {"title", "price", "videos", "minutes", "messages", "storage_gb"}
    unknown = set(spec) - known
    if unknown:
        raise InvalidInput(f"plan {name!r} has unknown settings {', '.join(sorted(unknown))}")
    return Plan(
        name=name,
        title=str(spec.get("title") or name.removeprefix(ENTERPRISE).title()),
        price=str(spec.get("price", "")),
        videos=_number(spec.get("videos"), 1, f"{name}.videos"),
        minutes=_number(spec.get("minutes"), 60, f"{name}.minutes"),
        messages=_number(spec.get("messages"), 1, f"{name}.messages"),
        storage=_number(spec.get("storage_gb"), GB, f"{name}.storage_gb"),
    )


class PlanBook:
    """Every configured plan: Free and Pro (or what the configuration says), one
    ``enterprise:<group>`` per configured organisation, and the default plan's name."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        specs = {**DEFAULT_PLANS, **(config.get("plans") or {})}
        self.plans: dict[str, Plan] = {name: plan_from(name, spec) for name, spec in specs.items()}
        self.enterprise: dict[str, Plan] = {}
        for group, spec in (config.get("enterprise") or {}).items():
            name = ENTERPRISE + group
            self.enterprise[group] = self.plans[name] = plan_from(
                name, {"title": f"Enterprise ({group})", **spec}
            )
        self.default = str(config.get("default_plan") or "free")
        if self.default not in self.plans:
            raise InvalidInput(f"the default plan {self.default!r} is not one of {', '.join(self.plans)}")
        #: where a user over a limit is sent to upgrade ("" = the billing checkout, if billing is on)
        self.upgrade_url = str(config.get("upgrade_url") or "")

    def get(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise InvalidInput(f"No plan named {name!r}: one of {', '.join(self.plans)}") from None

    def org_of(self, groups: Iterable[str]) -> str | None:
        """The enterprise group among ``groups`` (the first by name, if several)."""
        return next((g for g in sorted(groups) if g in self.enterprise), None)


class PlanRow(ServiceBase):
    """A user's plan as set by hand and by Stripe, and the enterprise group last seen."""

    __tablename__ = "vidrag_plans"

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: the plan an admin set by hand (``source="admin"``), else the default plan's name
    plan: Mapped[str] = mapped_column(String(128))
    #: "default" or "admin": whether ``plan`` was set by hand
    source: Mapped[str] = mapped_column(String(16))
    #: the plan Stripe's webhooks last set (None: no subscription)
    stripe_plan: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: the subscription's period start (messages reset on its monthly anniversaries)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the enterprise group the service last saw the user in (None: none)
    org: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class PlanChange(ServiceBase):
    """The audit trail: every plan change, by whom and from where."""

    __tablename__ = "vidrag_plan_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    old_plan: Mapped[str | None] = mapped_column(String(128), nullable=True)
    new_plan: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class Standing:
    """A user's plan right now: the plan, the account it counts against, where it came
    from, and the start of the current message period."""

    user: str
    plan: Plan
    account: str
    source: str
    period_start: datetime | None

    def resets_at(self, now: datetime | None = None) -> datetime:
        """When monthly messages next reset."""
        return period_bounds(self.period_start, now)[1]


def _add_months(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def _aware(when: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns: they were stored as UTC
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def period_bounds(anchor: datetime | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The message period containing ``now``: a calendar month (UTC), or a month-long
    period on the anniversaries of ``anchor`` (a subscription's period start)."""
    now = now or datetime.now(UTC)
    if anchor is None:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return start, _add_months(start, 1)
    anchor = _aware(anchor)
    # step from the anchor each time: _add_months clamps days (Jan 31 -> Feb 28)
    k = (now.year - anchor.year) * 12 + now.month - anchor.month
    if _add_months(anchor, k) > now:
        k -= 1
    return _add_months(anchor, k), _add_months(anchor, k + 1)


_PLAN_ROW = select(PlanRow.__table__).where(PlanRow.__table__.c.user == bindparam("u"))


def standing(session: Session, book: PlanBook, user: str, groups: Iterable[str] | None = None) -> Standing:
    """``user``'s plan now. ``groups`` (the caller's groups on this request) are recorded;
    without them the enterprise group last seen is used."""
    # a plain read on every answer; the ORM only when the group seen has changed
    row = session.connection().execute(_PLAN_ROW, {"u": user}).first()
    if groups is not None:
        org = book.org_of(groups)
        if (row is None and org is not None) or (row is not None and row.org != org):
            stored = session.get(PlanRow, user)
            if stored is None:
                stored = PlanRow(user=user, plan=book.default, source="default", org=org)
                session.add(stored)
            stored.org = org
            session.flush()
            row = stored
    if row is not None and row.source == "admin" and row.plan in book.plans:
        plan, source = book.plans[row.plan], "admin"
    elif row is not None and row.org in book.enterprise:
        plan, source = book.enterprise[row.org], "enterprise"
    elif row is not None and row.stripe_plan in book.plans:
        plan, source = book.plans[row.stripe_plan], "stripe"
    else:
        plan, source = book.plans[book.default], "default"
    if plan.name.startswith(ENTERPRISE):
        account = "group:" + plan.name.removeprefix(ENTERPRISE)
        anchor = None
    else:
        account = "user:" + user
        anchor = row.period_start if row is not None and source == "stripe" else None
    return Standing(user, plan, account, source, anchor)


# The service's configured plans, by the engine its sessions are bound to: callers of
# ``plan_of`` and ``set_plan`` (the billing webhooks) hold a session, not the settings.
# Keyed weakly by engine, so it is per database and per app, never process-global.
_BOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def use_book(engine: Any, book: PlanBook) -> None:
    """Make ``book`` the plans of sessions on ``engine`` (``Quotas`` does this)."""
    _BOOKS[engine] = book


def book_for(session: Session) -> PlanBook:
    """The plans configured for ``session``'s database (the built-in defaults if none)."""
    try:
        return _BOOKS[session.get_bind()]
    except KeyError:
        return PlanBook()


def plan_of(session: Session, user: str, book: PlanBook | None = None) -> str:
    """The name of ``user``'s plan now (see the module docstring for the precedence)."""
    return standing(session, book or book_for(session), user).plan.name


def set_plan(
    session: Session,
    user: str,
    plan: str,
    *,
    source: str,
    actor: str,
    period_start: datetime | None = None,
    book: PlanBook | None = None,
    note: str = "",
) -> PlanRow:
    """Record a plan for ``user``, with an audit row.

    ``source="stripe"`` (a verified webhook): the subscription's plan, and its current
    ``period_start`` (monthly messages reset on its anniversaries); the default plan's
    name (or ``period_start`` None with it) means no subscription. ``source="admin"``: a
    plan set by hand, which wins over everything else until undone. ``source="default"``:
    undo a hand-set plan (``plan`` is then ignored beyond being valid), so the user is
    back on their enterprise pool, their subscription or the default plan. Nothing
    stored is touched: over a limit, only new work is refused.
    """
    book = book or book_for(session)
    if source not in SOURCES:
        raise InvalidInput(f"A plan's source is one of {', '.join(SOURCES)}, not {source!r}")
    book.get(plan)
    old = standing(session, book, user).plan.name
    row = session.get(PlanRow, user)
    if row is None:
        row = PlanRow(user=user, plan=book.default, source="default")
        session.add(row)
    if source == "stripe":
        row.stripe_plan = None if plan == book.default else plan
        row.period_start = period_start
    elif source == "admin":
        row.plan, row.source = plan, "admin"
    else:
        row.plan, row.source = book.default, "default"
    session.flush()
    new = standing(session, book, user).plan.name
    session.add(PlanChange(user=user, old_plan=old, new_plan=new, source=source, actor=actor, note=note))
    session.flush()
    return row


def changes(session: Session, user: str | None = None, limit: int = 100) -> list[dict]:
    """The newest plan changes (of one user, or of everyone), for the audit view."""
    query = select(PlanChange).order_by(PlanChange.id.desc()).limit(limit)
    if user is not None:
        query = query.where(PlanChange.user == user)
    return [
        {
            "user": c.user,
            "old_plan": c.old_plan,
            "new_plan": c.new_plan,
            "source": c.source,
            "actor": c.actor,
            "note": c.note,
            "at": _aware(c.at).isoformat(),
        }
        for c in session.scalars(query)
    ]
