"""The usage ledger: one counter row per account and metric, reservations, and events.

    vidrag_usage         (account, metric) -> used, reserved, period_start
    vidrag_reservations  id, account, metric, amount, user, job_id | ref, expires_at
    vidrag_usage_events  what happened, for the per-user history

Reserving is ONE conditional write on the counter row::

    UPDATE vidrag_usage SET reserved = reserved + :n
     WHERE account = :a AND metric = :m AND used + reserved + :n <= :limit

never a read and then a write, so concurrent requests cannot both take the last unit: on
PostgreSQL the second UPDATE waits for the first's row lock and re-checks the condition
against the committed row; on SQLite the write lock serialises them. For messages the
same statement also starts a new period (``used`` back to 0) when the row's period is
older than the current one, so the reset is atomic too.

Commit moves a reservation's amount out of ``reserved`` and the real figure into
``used``; release only gives the reservation back. Both delete the reservation row first
and go on only if they deleted it, so a job's end reported twice (its callback and a
sweep) settles once. Every function here takes the caller's ``Session``: the caller
decides the transaction (an ingest reserves in the same transaction that queues its
jobs, so a refusal queues nothing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Integer, String, bindparam, case, delete, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import ServiceBase, utcnow

#: the metric whose ``used`` resets each period; the others only ever accumulate
PERIODIC = "messages"


class Counter(ServiceBase):
    """An account's use of one metric: committed (``used``) and in flight (``reserved``)."""

    __tablename__ = "vidrag_usage"

    #: "user:<name>" or "group:<name>" (an enterprise pool)
    account: Mapped[str] = mapped_column(String(300), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the start of the period ``used`` counts (messages only)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Reservation(ServiceBase):
    """Units held for work under way: an ingest job's, or one answer's."""

    __tablename__ = "vidrag_reservations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account: Mapped[str] = mapped_column(String(300), index=True)
    metric: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    #: who caused it (the asker, or the user who queued the job)
    user: Mapped[str] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: what else it is for (an answer: "answer:<collection id>")
    ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Event(ServiceBase):
    """One ledger entry: reserve, commit, release, expire or adjust (the usage history)."""

    __tablename__ = "vidrag_usage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    account: Mapped[str] = mapped_column(String(300), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    metric: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    ref: Mapped[str | None] = mapped_column(String(300), nullable=True)


@dataclass(frozen=True)
class Ask:
    """``amount`` of ``metric`` under ``limit`` (None = no limit)."""

    metric: str
    amount: int
    limit: int | None


class OverLimit(Exception):
    """A reservation did not fit: the counter's figures when it was refused."""

    def __init__(self, account: str, metric: str, limit: int, used: int, reserved: int, amount: int) -> None:
        super().__init__(f"{account} {metric}: {used} used + {reserved} reserved + {amount} > {limit}")
        self.account, self.metric, self.limit = account, metric, limit
        self.used, self.reserved, self.amount = used, reserved, amount


# The hot statements are built once, with bound parameters: building and cache-keying a
# statement per call cost more than running it (they are plain Core on the tables).
_C = Counter.__table__
_R = Reservation.__table__
_E = Event.__table__
_PERIOD = bindparam("period", type_=DateTime(timezone=True))
_N = bindparam("n", type_=BigInteger)


def _used_sql(periodic: bool):
    """``used`` as of the current period (0 when the row's period is older): SQL, not Python."""
    return case((_C.c.period_start < _PERIOD, 0), else_=_C.c.used) if periodic else _C.c.used


def _period_sql():
    return case((_C.c.period_start < _PERIOD, _PERIOD), else_=_C.c.period_start)


def _take_statement(periodic: bool, limited: bool):
    used = _used_sql(periodic)
    stmt = update(_C).where(_C.c.account == bindparam("a"), _C.c.metric == bindparam("m"))
    if limited:
        stmt = stmt.where(used + _C.c.reserved + _N <= bindparam("lim", type_=BigInteger))
    values = {"reserved": _C.c.reserved + _N}
    if periodic:
        values.update(used=used, period_start=_period_sql())
    return stmt.values(**values)


def _settle_statement(periodic: bool, commit: bool):
    values = {"reserved": _C.c.reserved - bindparam("held", type_=BigInteger)}
    if commit:
        values["used"] = _used_sql(periodic) + bindparam("real", type_=BigInteger)
        if periodic:
            values["period_start"] = _period_sql()
    return update(_C).where(_C.c.account == bindparam("a"), _C.c.metric == bindparam("m")).values(**values)


_TAKE = {(p, lim): _take_statement(p, lim) for p in (False, True) for lim in (False, True)}
_SETTLE = {(p, c): _settle_statement(p, c) for p in (False, True) for c in (False, True)}
_INSERT_RESERVATION = insert(_R)
_INSERT_EVENT = insert(_E)
_HELD = select(_R.c.account, _R.c.metric, _R.c.amount, _R.c.user, _R.c.job_id, _R.c.ref).where(
    _R.c.id == bindparam("id")
)
_DROP = delete(_R).where(_R.c.id == bindparam("id"))


def _ensure(session: Session, account: str, metric: str, period: datetime | None) -> None:
    """The counter row exists (an insert that does nothing if another request made it)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    values = {"account": account, "metric": metric, "used": 0, "reserved": 0, "period_start": period}
    session.execute(dialect_insert(Counter).values(**values).on_conflict_do_nothing())


def _take(session: Session, account: str, ask: Ask, period: datetime | None) -> bool:
    """The conditional write: True if ``ask`` fit and is now reserved."""
    params = {"a": account, "m": ask.metric, "n": ask.amount}
    if ask.limit is not None:
        params["lim"] = ask.limit
    if period is not None:
        params["period"] = period
    stmt = _TAKE[(period is not None, ask.limit is not None)]
    return session.connection().execute(stmt, params).rowcount == 1


def _settle(session: Session, account: str, metric: str, held: int, real: int | None, period) -> None:
    """Take ``held`` out of reserved and, if ``real`` is given, add it to used."""
    params = {"a": account, "m": metric, "held": held}
    if real is not None:
        params["real"] = real
        if period is not None:
            params["period"] = period
    stmt = _SETTLE[(real is not None and period is not None, real is not None)]
    session.connection().execute(stmt, params)


def counter(session: Session, account: str, metric: str) -> Counter | None:
    """The counter row as stored (a read, for views and messages only; never for a decision)."""
    return session.execute(
        select(Counter).where(Counter.account == account, Counter.metric == metric)
    ).scalar_one_or_none()


def reserve(
    session: Session,
    account: str,
    user: str,
    asks: list[Ask],
    *,
    ttl: timedelta,
    job_id: str | None = None,
    ref: str | None = None,
    period: datetime | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Reserve every ask for ``account`` or none: the reservation ids, or ``OverLimit``
    for the first that does not fit (the caller's transaction must then roll back,
    which ``Catalog.session`` does when the exception leaves it). ``period`` is the
    current message period's start (used for the messages metric only). Dead
    reservations are not swept here: the caller sweeps in a transaction of its own
    (``sweep``) and tries again, so a sweep never waits on locks this one holds."""
    now = now or datetime.now(UTC)
    ids = []
    for ask in asks:
        p = period if ask.metric == PERIODIC else None
        if not _take(session, account, ask, p):
            # no row yet, or over the limit: make the row and try once more (the
            # conditional write still decides; the row's figures only word the refusal)
            _ensure(session, account, ask.metric, p)
            if not _take(session, account, ask, p):
                row = counter(session, account, ask.metric)
                used, held = (row.used, row.reserved) if row is not None else (0, 0)
                if p is not None and row is not None and row.period_start is not None:
                    used = 0 if _aware(row.period_start) < p else used
                raise OverLimit(account, ask.metric, ask.limit, used, held, ask.amount)
        rid = str(uuid.uuid4())
        session.connection().execute(
            _INSERT_RESERVATION,
            {"id": rid, "account": account, "metric": ask.metric, "amount": ask.amount, "user": user,
             "job_id": job_id, "ref": ref, "created_at": now, "expires_at": now + ttl},
        )  # fmt: skip
        _event(session, now, account, user, ask.metric, "reserve", ask.amount, job_id, ref)
        ids.append(rid)
    return ids


def _event(session: Session, at, account, user, metric, kind, amount, job_id=None, ref=None) -> None:
    session.connection().execute(
        _INSERT_EVENT,
        {"at": at or datetime.now(UTC), "account": account, "user": user, "metric": metric, "kind": kind,
         "amount": amount, "job_id": job_id, "ref": ref},
    )  # fmt: skip


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _take_out(session: Session, reservation_id: str):
    """Delete the reservation; its row if this call deleted it (None: settled already)."""
    connection = session.connection()
    row = connection.execute(_HELD, {"id": reservation_id}).first()
    if row is None:
        return None
    return row if connection.execute(_DROP, {"id": reservation_id}).rowcount == 1 else None


def commit(
    session: Session,
    reservation_id: str,
    real: int | None = None,
    *,
    period: datetime | None = None,
    ref: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Settle a reservation as done: ``real`` (default: the amount held) becomes used."""
    row = _take_out(session, reservation_id)
    if row is None:
        return False
    real = row.amount if real is None else real
    _settle(session, row.account, row.metric, row.amount, real, period if row.metric == PERIODIC else None)
    _event(session, now, row.account, row.user, row.metric, "commit", real, row.job_id, ref or row.ref)
    return True


def release(
    session: Session, reservation_id: str, *, kind: str = "release", now: datetime | None = None
) -> bool:
    """Give a reservation back (work failed, was cancelled, or its holder died)."""
    row = _take_out(session, reservation_id)
    if row is None:
        return False
    _settle(session, row.account, row.metric, row.amount, None, None)
    _event(session, now, row.account, row.user, row.metric, kind, row.amount, row.job_id, row.ref)
    return True


def extend(session: Session, reservation_id: str, extra: int, limit: int | None) -> bool:
    """Hold ``extra`` more units on a reservation, under ``limit`` (the same conditional
    write); False if it does not fit or the reservation is gone."""
    row = session.get(Reservation, reservation_id)
    if row is None:
        return False
    if extra <= 0:
        return True
    if not _take(session, row.account, Ask(row.metric, extra, limit), None):
        return False
    session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id)
        .values(amount=Reservation.amount + extra)
        .execution_options(synchronize_session=False)
    )
    session.expire(row)
    return True


def record(
    session: Session, account: str, user: str, metric: str, amount: int, *, kind: str = "commit",
    job_id: str | None = None, ref: str | None = None, period: datetime | None = None,
) -> None:  # fmt: skip
    """Count work already done with no reservation left (it expired while the job ran on)."""
    p = period if metric == PERIODIC else None
    _ensure(session, account, metric, p)
    _settle(session, account, metric, 0, amount, p)
    _event(session, None, account, user, metric, kind, amount, job_id, ref)


def give_back(
    session: Session, account: str, user: str, metric: str, amount: int, *,
    job_id: str | None = None, ref: str | None = None,
) -> None:  # fmt: skip
    """Take ``amount`` off ``used`` (never below 0): a committed video was removed."""
    c = _C.c
    session.connection().execute(
        update(_C)
        .where(c.account == account, c.metric == metric)
        .values(used=case((c.used > amount, c.used - amount), else_=0))
    )
    _event(session, None, account, user, metric, "return", amount, job_id, ref)


def of_job(session: Session, job_id: str) -> list[Reservation]:
    """The reservations an ingest job holds."""
    return list(session.scalars(select(Reservation).where(Reservation.job_id == job_id)))


def sweep(session: Session, *, account: str | None = None, now: datetime | None = None) -> int:
    """Release reservations whose holder is gone: expired ones, and those of jobs that
    failed or no longer exist; commit those of jobs that finished (their end was not
    reported). Returns how many were settled."""
    from vidrag_kernel.catalog import IngestJob

    now = now or datetime.now(UTC)
    query = select(Reservation.id, Reservation.job_id, Reservation.expires_at)
    if account is not None:
        query = query.where(Reservation.account == account)
    rows = session.execute(query).all()
    settled = 0
    states: dict[str, str | None] = {}
    for rid, job_id, expires_at in rows:
        if job_id is not None:
            if job_id not in states:
                job = session.get(IngestJob, job_id)
                states[job_id] = job.state if job is not None else None
            state = states[job_id]
            if state == "done":
                settled += commit(session, rid, now=now)
                continue
            if state in (None, "failed"):
                settled += release(session, rid, now=now)
                continue
        if _aware(expires_at) < now:
            settled += release(session, rid, kind="expire", now=now)
    return settled


def history(session: Session, user: str, limit: int = 200) -> list[dict]:
    """``user``'s ledger entries, newest first."""
    query = select(Event).where(Event.user == user).order_by(Event.id.desc()).limit(limit)
    return [
        {
            "at": _aware(e.at).isoformat(),
            "account": e.account,
            "metric": e.metric,
            "kind": e.kind,
            "amount": e.amount,
            "job_id": e.job_id,
            "ref": e.ref,
        }
        for e in session.scalars(query)
    ]


def accounts(session: Session) -> dict[str, dict[str, Counter]]:
    """Every counter row, by account and metric (the admin view)."""
    out: dict[str, dict[str, Counter]] = {}
    for row in session.scalars(select(Counter).order_by(Counter.account, Counter.metric)):
        out.setdefault(row.account, {})[row.metric] = row
    return out


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
